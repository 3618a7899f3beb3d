import type { ProtectEngine, ProtectState } from '@underpass/shared/engines';
import type { PeerFactory } from '@underpass/shared/links';
import { ExitPeer, ISOLATED_CLIENT_OPTIONS, readMagnet, type ExitPeerState } from '@underpass/shared/torrent';
import type WebTorrent from 'webtorrent/dist/webtorrent.min.js';
import type { Torrent } from 'webtorrent/dist/webtorrent.min.js';
import type { FeatureHost } from '../../lib/engine-host';
import { createPathEngine } from '../../lib/path-engine';
import type { EngineEvent, OffscreenCommand } from '../../lib/messages';
import { safely } from '../../lib/safely';
import { switchError, toSwitchError, truncateReason, type SwitchError } from '../../lib/switch-error';
import {
  MAX_DOWNLOADS,
  MAX_LISTED_FILES,
  type DownloadState,
  type DownloadsEngineState,
  type DownloadsPath,
  type TorrentProgress,
} from './downloads-messages';
import { startMediaServer, type MediaServer } from './media-server';

/**
 * Downloads in the engines' host: the user's own WebTorrent, which finds no one by itself (no tracker, DHT,
 * LSD, PEX or web seeds, and magnets stripped of everything it could contact), and whose one peer per torrent
 * is an exit's torrent service reached through this feature's own path (a ProtectEngine that asks the broker
 * for an exit serving torrents). The swarm sees only the exit; the user's client still verifies every piece.
 * Progress goes out as `downloads-state` events once a second while anything is listed.
 */

export const DOWNLOADS_PROGRESS_INTERVAL_MS = 1_000;
/** After the broker found no exit serving torrents (or the path failed thrice), ask again this much later. */
export const DOWNLOADS_PATH_RETRY_MS = 5_000;
/** The exit's wire is reopened sooner than ExitPeer's default: a lost path usually comes back in seconds. */
const EXIT_PEER_RETRY_BASE_MS = 500;
const EXIT_PEER_RETRY_MAX_MS = 4_000;

export type WebTorrentClient = Pick<WebTorrent, 'add' | 'destroy' | 'on'>;

export type DownloadsHostOptions = {
  createPeer: PeerFactory;
  WebSocket: typeof WebSocket;
  emit: (event: EngineEvent) => void;
  /** The user's WebTorrent, loaded on first use (a separate chunk: Protect and Volunteer never load it). */
  createClient?: () => Promise<WebTorrentClient>;
};

type Entry = {
  infoHash: string;
  name: string;
  trackers: string[];
  torrent?: Torrent;
  peer?: ExitPeer;
  failure?: SwitchError;
  /** Blob URLs made for saving, revoked when the torrent is removed. */
  urls: string[];
};

/** One run of Downloads, from start to stop: callbacks check it is still the current one. */
type DownloadsRun = {
  engine: ProtectEngine;
  client: Promise<WebTorrentClient>;
  path: DownloadsPath;
  entries: Map<string, Entry>;
  ticker: ReturnType<typeof setInterval>;
  retryTimer?: ReturnType<typeof setTimeout>;
  /** Serves the listed torrents' audio and video files to the player while they download. */
  media: MediaServer;
};

/** WebTorrent with nothing of its own to contact: the exit is the only peer it will ever have. */
export async function createIsolatedClient(): Promise<WebTorrentClient> {
  const { default: WebTorrentClass } = await import('webtorrent/dist/webtorrent.min.js');
  return new WebTorrentClass(ISOLATED_CLIENT_OPTIONS);
}

export class DownloadsHost implements FeatureHost<'downloads'> {
  readonly name = 'downloads';
  private run: DownloadsRun | undefined;

  constructor(private readonly options: DownloadsHostOptions) {}

  get state(): DownloadsEngineState {
    const run = this.run;
    if (!run) return { status: 'off' };
    const torrents = [...run.entries.values()].map((entry) => progressOf(entry, run.path));
    return { status: 'on', path: run.path, torrents };
  }

  handle(command: OffscreenCommand): boolean {
    switch (command.type) {
      case 'downloads-start':
        if (!this.run) this.start(command);
        return true;
      case 'downloads-stop':
        this.stop();
        return true;
      case 'downloads-add':
        if (this.run) void this.add(this.run, command.magnet);
        return true;
      case 'downloads-remove':
        if (this.run) this.remove(this.run, command.infoHash);
        return true;
      case 'downloads-save':
        if (this.run) void this.save(this.run, command.infoHash, command.fileIndex);
        return true;
      default:
        return false;
    }
  }

  shutdown(): void {
    this.stop();
  }

  private start(command: Extract<OffscreenCommand, { type: 'downloads-start' }>): void {
    const engine = createPathEngine({
      signalingUrl: command.signalingUrl,
      mode: command.mode,
      needs: 'torrent',
      WebSocket: this.options.WebSocket,
      createPeer: this.options.createPeer,
    });
    const run: DownloadsRun = {
      engine,
      client: (this.options.createClient ?? createIsolatedClient)(),
      path: { status: 'connecting' },
      entries: new Map(),
      ticker: setInterval(() => {
        if (this.run === run && run.entries.size > 0) this.report();
      }, DOWNLOADS_PROGRESS_INTERVAL_MS),
      media: startMediaServer({ torrentOf: (infoHash) => run.entries.get(infoHash)?.torrent }),
    };
    this.run = run;
    run.client.then(
      (client) => client.on('error', (error) => console.warn('underpass downloads:', String(error))),
      (error: unknown) => {
        if (this.run !== run) return;
        run.path = { status: 'failed', ...toSwitchError(error, 'downloads-failed') };
        this.report();
      },
    );
    engine.on('state', (state: ProtectState) => {
      if (this.run !== run) return;
      const path = pathOf(state);
      if (path) run.path = path;
      this.report();
    });
    this.buildPath(run);
  }

  /** Builds the path; when it cannot be built (no exit serves torrents, say), tries again after a pause. */
  private buildPath(run: DownloadsRun): void {
    run.engine.start().catch(() => {
      if (this.run !== run) return;
      run.retryTimer = setTimeout(() => {
        if (this.run === run) this.buildPath(run);
      }, DOWNLOADS_PATH_RETRY_MS);
    });
  }

  private stop(): void {
    const run = this.run;
    this.run = undefined;
    if (run) {
      clearInterval(run.ticker);
      run.media.stop();
      if (run.retryTimer !== undefined) clearTimeout(run.retryTimer);
      for (const entry of run.entries.values()) release(entry);
      safely(() => run.engine.stop());
      void run.client.then(
        (client) => safely(() => client.destroy()),
        () => {},
      );
    }
    this.report();
  }

  private async add(run: DownloadsRun, input: string): Promise<void> {
    const read = readMagnet(input);
    if (!read.ok || run.entries.has(read.magnet.infoHash) || run.entries.size >= MAX_DOWNLOADS) return;
    const { infoHash, name, trackers, userMagnet } = read.magnet;
    const entry: Entry = { infoHash, name: name ?? infoHash, trackers, urls: [] };
    run.entries.set(infoHash, entry);
    this.report();
    let client: WebTorrentClient;
    try {
      client = await run.client;
    } catch {
      return; // the run's path already says why
    }
    if (this.run !== run || run.entries.get(infoHash) !== entry) return;
    // The user's client gets the magnet with nothing it could contact, and no trackers of its own.
    const torrent = client.add(userMagnet, { announce: [] });
    entry.torrent = torrent;
    torrent.on('error', (error) => {
      entry.failure = { code: 'downloads-failed', reason: truncateReason(String(error)) };
      entry.peer?.stop();
      this.report();
    });
    torrent.on('done', () => {
      // Every file is verified: the exit's wire is no longer needed, let the exit forget us.
      entry.peer?.stop();
      this.report();
    });
    // WebTorrent 3 parses ids asynchronously: a peer may only be added once it knows the infohash.
    const attach = () => {
      if (this.run !== run || entry.peer || entry.failure) return;
      const peer = new ExitPeer({
        open: (request) => run.engine.open(request),
        torrent,
        request: { kind: 'torrent', infoHash, trackers, files: [] },
        retryBaseMs: EXIT_PEER_RETRY_BASE_MS,
        retryMaxMs: EXIT_PEER_RETRY_MAX_MS,
      });
      entry.peer = peer;
      peer.on('state', (state: ExitPeerState) => {
        if (state.status === 'failed')
          entry.failure = switchError(state.code, state.reason, 'downloads-failed');
        if (this.run === run) this.report();
      });
      peer.start();
    };
    if (torrent.infoHash) attach();
    else torrent.once('infoHash', attach);
  }

  private remove(run: DownloadsRun, infoHash: string): void {
    const entry = run.entries.get(infoHash);
    if (!entry) return;
    run.entries.delete(infoHash);
    release(entry);
    this.report();
  }

  /** Makes a finished file's blob URL and hands it to the page, which saves it with the browser's downloads. */
  private async save(run: DownloadsRun, infoHash: string, fileIndex: number): Promise<void> {
    const entry = run.entries.get(infoHash);
    const file = entry?.torrent?.files[fileIndex];
    if (!entry || !file?.done) return;
    const url = URL.createObjectURL(await file.blob());
    if (this.run !== run || run.entries.get(infoHash) !== entry) return URL.revokeObjectURL(url);
    entry.urls.push(url);
    this.options.emit({
      target: 'background',
      type: 'downloads-file-ready',
      infoHash,
      fileIndex,
      name: file.name.slice(0, 1024),
      url,
    });
  }

  private report(): void {
    this.options.emit({ target: 'background', type: 'downloads-state', state: this.state });
  }
}

/** Stops an entry's wire, drops its pieces and the URLs made for saving. */
function release(entry: Entry): void {
  safely(() => entry.peer?.stop());
  const torrent = entry.torrent;
  if (torrent && !torrent.destroyed) safely(() => torrent.destroy({ destroyStore: true }));
  for (const url of entry.urls) URL.revokeObjectURL(url);
  entry.urls = [];
}

function progressOf(entry: Entry, path: DownloadsPath): TorrentProgress {
  const torrent = entry.torrent;
  const files = torrent?.ready ? torrent.files : [];
  return {
    infoHash: entry.infoHash,
    name: (torrent?.name ?? entry.name).slice(0, 1024),
    length: torrent?.length ?? 0,
    downloaded: Math.max(0, Math.floor(torrent?.downloaded ?? 0)),
    remaining: files.reduce((sum, file) => sum + Math.max(0, file.length - Math.floor(file.downloaded)), 0),
    downloadSpeed: Math.max(0, Math.floor(torrent?.downloadSpeed ?? 0)),
    peers: torrent?.numPeers ?? 0,
    ...(entry.peer?.swarmPeers !== undefined ? { swarmPeers: entry.peer.swarmPeers } : {}),
    state: stateOf(entry, path),
    files: files.slice(0, MAX_LISTED_FILES).map((file, index) => ({
      index,
      path: file.path.slice(0, 1024),
      length: file.length,
      downloaded: Math.min(file.length, Math.max(0, Math.floor(file.downloaded))),
      done: file.done,
      selected: true,
    })),
  };
}

function stateOf(entry: Entry, path: DownloadsPath): DownloadState {
  if (entry.failure) return { status: 'failed', ...entry.failure };
  const torrent = entry.torrent;
  if (torrent?.ready && torrent.files.length > 0 && torrent.files.every((file) => file.done))
    return { status: 'done' };
  const peer = entry.peer?.state;
  if (peer?.status === 'connected')
    return torrent?.ready ? { status: 'downloading' } : { status: 'metadata' };
  if (path.status === 'failed' || path.status === 'reconnecting')
    return { status: 'waiting', reason: path.reason };
  if (peer?.status === 'waiting' && path.status === 'ready')
    return { status: 'waiting', reason: truncateReason(peer.reason) };
  return { status: 'waiting' };
}

/** The path as the page shows it; undefined for `off` (the run's own stop says that). */
function pathOf(state: ProtectState): DownloadsPath | undefined {
  switch (state.status) {
    case 'off':
      return undefined;
    case 'connecting':
      return { status: 'connecting' };
    case 'reconnecting':
      return { status: 'reconnecting', reason: truncateReason(state.reason) };
    case 'protected':
      return { status: 'ready', exitPeerId: state.path.exit.peerId };
    case 'error':
      return {
        status: 'failed',
        ...(state.code === 'no-exit-available'
          ? {
              code: 'no-torrent-exit',
              reason: 'No exit serves torrents right now; trying again every few seconds.',
            }
          : switchError(state.code, state.reason, 'downloads-failed')),
      };
  }
}
