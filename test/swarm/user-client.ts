import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebTorrent, { type Torrent } from 'webtorrent';
import type { ByteStream } from '@underpass/shared/streams';
import {
  ISOLATED_CLIENT_OPTIONS,
  PeerDuplex,
  exitWireOf,
  prepareExitWire,
  sendSelection,
} from '@underpass/shared/torrent';
import { sha256 } from './content.js';

/**
 * The user's side as the extension will run it, in Node: a WebTorrent that finds no one by itself (no
 * tracker, DHT, LSD, PEX or web seeds) and whose only peer is the exit, reached through one byte stream.
 */
export class UserClient {
  readonly client = new WebTorrent({
    ...ISOLATED_CLIENT_OPTIONS,
    torrentPort: { port: 0, host: '127.0.0.1' },
  });
  /** Every 'warning' the user's torrents raised (a piece that failed verification shows here). */
  readonly warnings: string[] = [];
  /** What the exit last said of its swarm peers (the `underpass_peers` extension), by infohash. */
  readonly swarmPeers = new Map<string, number>();

  private constructor(private readonly dir: string) {
    this.client.on('error', (error) => this.warnings.push(String(error)));
  }

  static async create(): Promise<UserClient> {
    return new UserClient(await mkdtemp(join(tmpdir(), 'underpass-user-')));
  }

  /**
   * Adds a torrent (magnet or .torrent; trackers and sources of its own are never used), joins `stream` as
   * its one peer, selects `files` (paths inside the torrent; all when omitted) and resolves when each is done.
   */
  async download(torrentId: string | Uint8Array, stream: ByteStream, files?: string[]): Promise<Torrent> {
    const torrent = this.client.add(torrentId, { announce: [], path: this.dir, deselect: true });
    torrent.on('warning', (warning) => this.warnings.push(String(warning)));
    if (!torrent.infoHash) await new Promise<void>((resolve) => torrent.once('infoHash', () => resolve()));
    const peer = new PeerDuplex(stream, 'exit');
    torrent.addPeer(peer);
    // As the extension's ExitPeer does: the exit's swarm peers heard, the request pipeline's floor set.
    const wire = exitWireOf(torrent._peers, 'exit');
    const infoHash = torrent.infoHash;
    if (wire) prepareExitWire(wire, { onSwarmPeers: (peers) => this.swarmPeers.set(infoHash, peers) });
    const ended = new Promise<never>((_resolve, reject) =>
      peer.once('close', () => reject(peer.failure ?? new Error('the exit closed the stream'))),
    );
    if (!torrent.ready)
      await Promise.race([new Promise<void>((resolve) => torrent.once('ready', () => resolve())), ended]);
    await Promise.race([this.fetch(torrent, files), ended]);
    return torrent;
  }

  /**
   * Changes the selection on the open stream (the selection extension tells the exit) to `files` and
   * resolves when each is done.
   */
  async reselect(torrent: Torrent, files: string[]): Promise<void> {
    const indices = torrent.files.flatMap((file, index) =>
      files.includes(relative(file.path)) ? [index] : [],
    );
    if (!sendSelection(torrent.wires[0]!, indices)) throw new Error('the exit does not take selections');
    await this.fetch(torrent, files);
  }

  /** Selects `files` (all when omitted) and resolves when each is done. */
  private async fetch(torrent: Torrent, files: string[] | undefined): Promise<void> {
    const wanted = torrent.files.filter((file) => !files || files.includes(relative(file.path)));
    // Deselect everything, then select: a file's deselect would drop a boundary piece a neighbour shares.
    torrent.deselect(0, torrent.pieces.length - 1);
    for (const file of wanted) file.select();
    await Promise.all(
      wanted.map((file) =>
        file.done ? undefined : new Promise<void>((resolve) => file.on('done', resolve)),
      ),
    );
  }

  /** Each file of `torrent` that is complete, by its path inside the torrent, with its content's sha256. */
  async hashes(torrent: Torrent): Promise<Record<string, string>> {
    const result: Record<string, string> = {};
    for (const file of torrent.files.filter((f) => f.done)) {
      result[relative(file.path)] = sha256(new Uint8Array(await file.arrayBuffer()));
    }
    return result;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.client.destroy(() => resolve()));
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A file's path inside the torrent, without the torrent's name. */
export const relative = (path: string): string => path.split('/').slice(1).join('/');
