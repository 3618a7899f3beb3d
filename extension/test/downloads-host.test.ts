import { createHash } from 'node:crypto';
import { Emitter } from '@underpass/shared/emitter';
import type { UnderpassError } from '@underpass/shared/errors';
import type { ByteStreamEvents, ByteStream } from '@underpass/shared/streams';
import type { TorrentRequest } from '@underpass/shared/tunnel';
import { describe, expect, it, vi } from 'vitest';
import type { PathServiceState, ProtectState } from '@underpass/shared/engines';
import type { ExitService } from '@underpass/shared/signaling';
import {
  DownloadsHost,
  type DownloadsPathEngine,
  type ProtectPathEngine,
  type ProtectRunView,
  type WebTorrentClient,
} from '../features/downloads/downloads-host';
import { MAX_DOWNLOADS, type DownloadsEngineState } from '../features/downloads/downloads-messages';
import { memorySavedDownloads, type SavedDownload } from '../features/downloads/saved-downloads';
import type { EngineEvent, OffscreenCommand } from '../lib/messages';
import { DEFAULT_DIRECTORY_KEYS } from '../lib/settings';
import { PROTECTED_TWO_HOP } from './protected-state';

/**
 * DownloadsHost's logic around stand-ins for what only a browser has (WebTorrent's browser build, OPFS,
 * WebRTC): what the user's client is given, what the exit is asked, what is saved for a restart and what a
 * restart brings back, pause, file choice and removal. The real parts run in e2e/downloads*.spec.ts.
 */

// --- a bencode writer, for .torrent files made by hand -------------------------------------------------------

type B = number | string | Uint8Array | B[] | { [key: string]: B };
const utf8 = (text: string) => new TextEncoder().encode(text);
function bencode(value: B): Uint8Array {
  const parts: Uint8Array[] = [];
  const walk = (v: B): void => {
    if (typeof v === 'number') parts.push(utf8(`i${v}e`));
    else if (typeof v === 'string') walk(utf8(v));
    else if (v instanceof Uint8Array) parts.push(utf8(`${v.length}:`), v);
    else if (Array.isArray(v)) {
      parts.push(utf8('l'));
      v.forEach(walk);
      parts.push(utf8('e'));
    } else {
      parts.push(utf8('d'));
      for (const key of Object.keys(v).sort()) {
        walk(key);
        walk(v[key]!);
      }
      parts.push(utf8('e'));
    }
  };
  walk(value);
  return Buffer.concat(parts);
}

const INFO = {
  name: 'album',
  'piece length': 16384,
  pieces: new Uint8Array(3 * 20).fill(7),
  files: [
    { length: 20000, path: ['one.mp3'] },
    { length: 10000, path: ['two.mp3'] },
    { length: 5000, path: ['cover.jpg'] },
  ],
};
const INFO_BYTES = bencode(INFO);
const INFO_HASH = createHash('sha1').update(INFO_BYTES).digest('hex');
const TORRENT_FILE = bencode({
  announce: 'http://tracker.example/announce',
  'announce-list': [['udp://tracker.example:6969'], ['javascript:alert(1)']],
  'url-list': ['http://seed.example/album/'],
  info: INFO,
});
const USER_TORRENT = Buffer.concat([utf8('d4:info'), INFO_BYTES, utf8('e')]);
const MAGNET_HASH = 'c'.repeat(40);
const MAGNET = `magnet:?xt=urn:btih:${MAGNET_HASH}&dn=film&tr=${encodeURIComponent('http://t.example/a')}&xs=${encodeURIComponent('http://x.example/f.torrent')}&ws=${encodeURIComponent('http://w.example/')}`;

// --- stand-ins ----------------------------------------------------------------------------------------------

class FakeStream extends Emitter<ByteStreamEvents> implements ByteStream {
  closed = false;
  write(): boolean {
    return true;
  }
  end(): void {}
  destroy(error?: UnderpassError): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', error);
  }
  pause(): void {}
  resume(): void {}
}

class FakeFile extends Emitter<{ done: [] }> {
  downloaded = 0;
  done = false;
  selections = 0;
  constructor(
    readonly path: string,
    readonly length: number,
    private readonly log: string[],
    private readonly index: number,
  ) {
    super();
  }
  get name() {
    return this.path.split('/').at(-1)!;
  }
  select() {
    this.log.push(`select file ${this.index}`);
  }
  deselect() {
    this.log.push(`deselect file ${this.index}`);
  }
  finish() {
    this.downloaded = this.length;
    this.done = true;
    this.emit('done');
  }
  async blob() {
    return new Blob([new Uint8Array(this.length)]);
  }
}

class FakeTorrent extends Emitter<Record<string, unknown[]>> {
  infoHash: string | undefined;
  name: string | undefined;
  length: number | undefined;
  files: FakeFile[] = [];
  pieces: unknown[] = [];
  downloaded = 0;
  downloadSpeed = 0;
  numPeers = 0;
  ready = false;
  destroyed = false;
  torrentFile: Uint8Array | undefined;
  peers: object[] = [];
  log: string[] = [];
  destroyedWith: { destroyStore?: boolean } | undefined;

  constructor(
    readonly id: string | Uint8Array,
    readonly addOptions: unknown,
  ) {
    super();
  }
  addPeer(peer: object) {
    this.peers.push(peer);
    return true;
  }
  select(start: number, end: number) {
    this.log.push(`select ${start}-${end}`);
  }
  deselect(start: number, end: number) {
    this.log.push(`deselect ${start}-${end}`);
  }
  /** Set to hold destroy's callback (WebTorrent deletes pieces asynchronously) until `finishDestroy`. */
  holdDestroy = false;
  private destroyDone: (() => void) | undefined;
  destroy(options?: { destroyStore?: boolean }, callback?: () => void) {
    this.destroyed = true;
    this.destroyedWith = options;
    if (this.holdDestroy) this.destroyDone = callback;
    else callback?.();
  }
  finishDestroy() {
    this.destroyDone?.();
  }
  /** What WebTorrent does once the metadata is in (from a .torrent, or from the exit). */
  giveMetadata(withTorrentFile = TORRENT_FILE) {
    this.infoHash ??= INFO_HASH;
    this.name = INFO.name;
    this.length = 35000;
    this.pieces = [null, null, null];
    this.files = INFO.files.map((f, i) => new FakeFile(`album/${f.path[0]}`, f.length, this.log, i));
    this.torrentFile = withTorrentFile;
    this.emit('metadata');
  }
  learnInfoHash(infoHash: string | undefined) {
    this.infoHash = infoHash;
    this.emit('infoHash');
  }
  /** The stored pieces were checked. */
  becomeReady() {
    this.ready = true;
    this.emit('ready');
  }
}

class FakeClient {
  torrents: FakeTorrent[] = [];
  destroyed = false;
  add(id: string | Uint8Array, options: unknown) {
    const torrent = new FakeTorrent(id, options);
    // WebTorrent 3 parses ids asynchronously: the infohash is known a tick later.
    if (typeof id === 'string')
      queueMicrotask(() => {
        torrent.learnInfoHash(/btih:([0-9a-f]{40})/.exec(id)?.[1]);
      });
    else torrent.infoHash = INFO_HASH;
    this.torrents.push(torrent);
    return torrent;
  }
  on() {
    return this;
  }
  destroy() {
    this.destroyed = true;
  }
}

class FakePath extends Emitter<{ state: [unknown] }> {
  opened: { request: TorrentRequest; stream: FakeStream }[] = [];
  stopped = false;
  async start() {}
  /** A stopped path's tunnel closes, and its streams with it. */
  stop() {
    this.stopped = true;
    for (const { stream } of this.opened) stream.destroy();
  }
  async open(request: TorrentRequest) {
    const stream = new FakeStream();
    this.opened.push({ request: structuredClone(request), stream });
    return stream;
  }
}

/** A stand-in store class per piece directory, which it names (WebTorrent only constructs it). */
const storeIn = (directory: string) => Object.assign(class PieceStore {}, { directory });
const directoryOf = (torrent: FakeTorrent) =>
  ((torrent.addOptions as { store: { directory: string } }).store ?? {}).directory;
const ADD_OPTIONS = { announce: [], store: expect.any(Function), deselect: true };

/** Protect's engine as Downloads ride its path (want, openService, its state and service events). */
class FakeProtect extends Emitter<{ state: [ProtectState]; service: [PathServiceState] }> {
  state: ProtectState = { status: 'connecting' };
  service: PathServiceState = { status: 'none' };
  wanted: (ExitService | undefined)[] = [];
  opened: { request: TorrentRequest; stream: FakeStream }[] = [];
  want(service: ExitService | undefined) {
    this.wanted.push(service);
  }
  serviceState() {
    return this.service;
  }
  async openService(request: TorrentRequest) {
    const stream = new FakeStream();
    this.opened.push({ request: structuredClone(request), stream });
    return stream;
  }
  setState(state: ProtectState, service: PathServiceState) {
    this.state = state;
    this.service = service;
    this.emit('state', state);
    this.emit('service', service);
  }
  /** Protect stopped: its link closes, and every session on it. */
  stop() {
    for (const { stream } of this.opened) stream.destroy();
    this.setState({ status: 'off' }, { status: 'none' });
  }
}

/**
 * `onDisk`: the piece directories OPFS holds at start (the sweep deletes those the host does not claim).
 * `protectRun`: Protect's run as the engines' host shows it (Firefox); absent, Downloads always build their own.
 */
function harness(
  saved = memorySavedDownloads(),
  onDisk: string[] = [],
  protectRun?: () => ProtectRunView | undefined,
) {
  const events: EngineEvent[] = [];
  const client = new FakeClient();
  const path = new FakePath();
  /** Every own path made, in order (the first is `path`). */
  const ownPaths: FakePath[] = [];
  const pieces = { removed: [] as string[], swept: [] as string[][] };
  const host = new DownloadsHost({
    createPeer: () => {
      throw new Error('no WebRTC here');
    },
    WebSocket: globalThis.WebSocket,
    emit: (event) => events.push(event),
    createClient: async () => client as unknown as WebTorrentClient, // the part of WebTorrent the host calls
    loadStorage: async () => ({
      storeIn,
      pieces: {
        remove: async (directory: string) => void pieces.removed.push(directory),
        sweep: async (owned: (directory: string) => boolean) => {
          const gone = onDisk.filter((directory) => !owned(directory));
          pieces.swept.push(gone);
          return gone.length;
        },
      },
    }),
    saved,
    createPath: () => {
      const made = ownPaths.length === 0 ? path : new FakePath();
      ownPaths.push(made);
      return made as unknown as DownloadsPathEngine; // start, stop, open and its state events
    },
    ...(protectRun ? { protectRun } : {}),
  });
  const send = (command: OffscreenCommand) => host.handle(command);
  send({
    target: 'offscreen',
    type: 'downloads-start',
    signalingUrl: 'ws://127.0.0.1:9/',
    directoryKeys: DEFAULT_DIRECTORY_KEYS,
    mode: 'direct',
  });
  const torrents = () => {
    const state: DownloadsEngineState = host.state;
    return state.status === 'on' ? state.torrents : [];
  };
  const pathState = () => {
    const state: DownloadsEngineState = host.state;
    return state.status === 'on' ? state.path : undefined;
  };
  return { host, send, client, path, ownPaths, saved, pieces, events, torrents, pathState };
}

const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

describe('DownloadsHost', () => {
  it('a magnet: the user client gets only its infohash and name, the exit its trackers; the record is saved', async () => {
    const h = harness();
    h.send({ target: 'offscreen', type: 'downloads-add', magnet: MAGNET });
    expect(h.torrents().map((t) => [t.infoHash, t.name, t.state.status])).toEqual([
      [MAGNET_HASH, 'film', 'waiting'],
    ]);
    await vi.waitFor(() => expect(h.path.opened).toHaveLength(1));
    const [torrent] = h.client.torrents;
    expect(torrent!.id).toBe(`magnet:?xt=urn:btih:${MAGNET_HASH}&dn=film`);
    expect(torrent!.addOptions).toEqual(ADD_OPTIONS);
    expect(h.path.opened[0]!.request).toEqual({
      kind: 'torrent',
      infoHash: MAGNET_HASH,
      trackers: ['http://t.example/a'],
      files: [],
    });
    expect(torrent!.peers).toHaveLength(1);
    expect(h.torrents()[0]!.state).toEqual({ status: 'metadata' });
    await vi.waitFor(() =>
      expect(h.saved.records.get(MAGNET_HASH)).toMatchObject({
        name: 'film',
        trackers: ['http://t.example/a'],
        files: [],
        paused: false,
      }),
    );
    // Its pieces go in a directory of this add's own, which the record names for a restart.
    expect(directoryOf(torrent!)).toMatch(new RegExp(`^underpass-${MAGNET_HASH}-[0-9a-f]{16}$`));
    expect(h.saved.records.get(MAGNET_HASH)!.pieces).toBe(directoryOf(torrent!));
  });

  it("saves a magnet's metadata (its info only) and a restart adds it again from there, asking the exit only after the stored pieces are checked", async () => {
    const saved = memorySavedDownloads();
    const first = harness(saved);
    const infoMagnet = `magnet:?xt=urn:btih:${INFO_HASH}&dn=album&tr=${encodeURIComponent('udp://t.example:1')}`;
    first.send({ target: 'offscreen', type: 'downloads-add', magnet: infoMagnet });
    await vi.waitFor(() => expect(first.client.torrents).toHaveLength(1));
    first.client.torrents[0]!.giveMetadata();
    await vi.waitFor(() => expect(saved.torrents.get(INFO_HASH)).toEqual(new Uint8Array(USER_TORRENT)));
    first.send({ target: 'offscreen', type: 'downloads-stop' });
    expect(first.client.torrents[0]!.destroyedWith).toEqual({ destroyStore: false });
    await vi.waitFor(() => expect(first.client.destroyed).toBe(true));

    // The browser restarts: a new host over the same saved list, with an orphan directory on disk too.
    const directory = directoryOf(first.client.torrents[0]!);
    const orphan = `underpass-${MAGNET_HASH}-${'0'.repeat(16)}`;
    const second = harness(saved, [directory, orphan]);
    await vi.waitFor(() => expect(second.client.torrents).toHaveLength(1));
    const again = second.client.torrents[0]!;
    expect(again.id).toEqual(new Uint8Array(USER_TORRENT));
    expect(again.addOptions).toEqual(ADD_OPTIONS);
    expect(directoryOf(again)).toBe(directory); // where its pieces are
    expect(second.torrents().map((t) => t.infoHash)).toEqual([INFO_HASH]);
    again.giveMetadata(USER_TORRENT);
    expect(second.path.opened).toHaveLength(0); // the pieces on disk are being checked
    again.becomeReady();
    await vi.waitFor(() => expect(second.path.opened).toHaveLength(1));
    expect(second.path.opened[0]!.request).toEqual({
      kind: 'torrent',
      infoHash: INFO_HASH,
      trackers: ['udp://t.example:1'],
      files: [],
    });
    await vi.waitFor(() => expect(second.pieces.swept).toEqual([[orphan]]));
  });

  it('a restart with every file already verified never contacts the exit', async () => {
    const saved = memorySavedDownloads();
    await saved.save(record(INFO_HASH));
    await saved.saveTorrent(INFO_HASH, USER_TORRENT);
    const h = harness(saved);
    await vi.waitFor(() => expect(h.client.torrents).toHaveLength(1));
    const torrent = h.client.torrents[0]!;
    torrent.giveMetadata(USER_TORRENT);
    for (const file of torrent.files) file.finish();
    torrent.becomeReady();
    expect(h.torrents()[0]!.state).toEqual({ status: 'done' });
    expect(h.path.opened).toHaveLength(0);
  });

  it('a .torrent file: the user client gets its info dictionary alone, the exit its infohash, valid trackers and the files chosen in the add', async () => {
    const h = harness();
    h.send({
      target: 'offscreen',
      type: 'downloads-add-torrent-file',
      name: 'album.torrent',
      base64: base64(TORRENT_FILE),
      files: [1],
    });
    await vi.waitFor(() => expect(h.client.torrents).toHaveLength(1));
    const torrent = h.client.torrents[0]!;
    expect(torrent.id).toEqual(new Uint8Array(USER_TORRENT));
    expect(h.torrents()[0]).toMatchObject({ infoHash: INFO_HASH, name: 'album' });
    torrent.giveMetadata(USER_TORRENT);
    torrent.becomeReady();
    await vi.waitFor(() => expect(h.path.opened).toHaveLength(1));
    expect(h.path.opened[0]!.request).toEqual({
      kind: 'torrent',
      infoHash: INFO_HASH,
      trackers: ['http://tracker.example/announce', 'udp://tracker.example:6969'],
      files: [1],
    });
    expect(h.torrents()[0]!.files.map((file) => file.selected)).toEqual([false, true, false]);
    await vi.waitFor(() => expect(h.saved.torrents.get(INFO_HASH)).toEqual(new Uint8Array(USER_TORRENT)));
  });

  it('pause closes the exit wire and keeps the torrent and its pieces; resume opens a new wire; both are saved', async () => {
    const h = await readyTorrent();
    const first = h.path.opened[0]!.stream;
    h.send({ target: 'offscreen', type: 'downloads-pause', infoHash: INFO_HASH });
    expect(first.closed).toBe(true);
    expect(h.torrents()[0]!.state).toEqual({ status: 'paused' });
    expect(h.client.torrents[0]!.destroyed).toBe(false);
    await vi.waitFor(() => expect(h.saved.records.get(INFO_HASH)?.paused).toBe(true));

    h.send({ target: 'offscreen', type: 'downloads-resume', infoHash: INFO_HASH });
    await vi.waitFor(() => expect(h.path.opened).toHaveLength(2));
    expect(h.torrents()[0]!.state).toEqual({ status: 'downloading' });
    await vi.waitFor(() => expect(h.saved.records.get(INFO_HASH)?.paused).toBe(false));
  });

  it('a paused torrent stays paused after a restart and contacts no exit', async () => {
    const saved = memorySavedDownloads();
    await saved.save({ ...record(INFO_HASH), paused: true });
    await saved.saveTorrent(INFO_HASH, USER_TORRENT);
    const h = harness(saved);
    await vi.waitFor(() => expect(h.client.torrents).toHaveLength(1));
    h.client.torrents[0]!.giveMetadata(USER_TORRENT);
    h.client.torrents[0]!.becomeReady();
    expect(h.torrents()[0]!.state).toEqual({ status: 'paused' });
    expect(h.path.opened).toHaveLength(0);
  });

  it('choosing files deselects everything first, then selects them, tells the exit, saves; the chosen files done closes the wire', async () => {
    const h = await readyTorrent();
    const torrent = h.client.torrents[0]!;
    torrent.log.length = 0;
    h.send({ target: 'offscreen', type: 'downloads-select', infoHash: INFO_HASH, files: [2, 0, 2] });
    expect(torrent.log).toEqual(['deselect 0-2', 'select file 0', 'select file 2']);
    expect(h.torrents()[0]!.files.map((f) => f.selected)).toEqual([true, false, true]);
    expect(h.torrents()[0]!.remaining).toBe(25000);
    await vi.waitFor(() => expect(h.saved.records.get(INFO_HASH)?.files).toEqual([0, 2]));

    // The exit's next wire asks for the chosen files (pause and resume make one at once).
    h.send({ target: 'offscreen', type: 'downloads-pause', infoHash: INFO_HASH });
    h.send({ target: 'offscreen', type: 'downloads-resume', infoHash: INFO_HASH });
    await vi.waitFor(() => expect(h.path.opened).toHaveLength(2));
    expect(h.path.opened[1]!.request.files).toEqual([0, 2]);

    torrent.files[0]!.finish();
    expect(h.path.opened[1]!.stream.closed).toBe(false);
    torrent.files[2]!.finish();
    expect(h.path.opened[1]!.stream.closed).toBe(true);
    expect(h.torrents()[0]!.state).toEqual({ status: 'done' });

    // Wanting the rest opens a wire again; every file chosen is saved as "all".
    h.send({ target: 'offscreen', type: 'downloads-select', infoHash: INFO_HASH, files: [0, 1, 2] });
    await vi.waitFor(() => expect(h.path.opened).toHaveLength(3));
    expect(torrent.log.slice(-2)).toEqual(['deselect 0-2', 'select 0-2']);
    await vi.waitFor(() => expect(h.saved.records.get(INFO_HASH)?.files).toEqual([]));
  });

  it('refuses a selection before the metadata or past the last file', async () => {
    const h = await readyTorrent();
    const torrent = h.client.torrents[0]!;
    torrent.log.length = 0;
    h.send({ target: 'offscreen', type: 'downloads-select', infoHash: INFO_HASH, files: [0, 3] });
    expect(torrent.log).toEqual([]);
    expect(h.torrents()[0]!.files.every((f) => f.selected)).toBe(true);

    h.send({ target: 'offscreen', type: 'downloads-add', magnet: MAGNET });
    await vi.waitFor(() => expect(h.client.torrents).toHaveLength(2));
    const magnet = h.client.torrents[1]!;
    h.send({ target: 'offscreen', type: 'downloads-select', infoHash: MAGNET_HASH, files: [0] });
    magnet.giveMetadata();
    magnet.becomeReady();
    // Only WebTorrent's own whole-torrent selection, re-applied at the metadata: the early choice was dropped.
    expect(magnet.log).toEqual(['deselect 0-2', 'select 0-2']);
    expect(h.torrents()[1]!.files.every((f) => f.selected)).toBe(true);
  });

  it('remove closes the wire, destroys the torrent with its pieces and forgets the saved record', async () => {
    const h = await readyTorrent();
    h.send({ target: 'offscreen', type: 'downloads-remove', infoHash: INFO_HASH });
    expect(h.path.opened[0]!.stream.closed).toBe(true);
    expect(h.client.torrents[0]!.destroyedWith).toEqual({ destroyStore: true });
    expect(h.torrents()).toEqual([]);
    await vi.waitFor(() => expect(h.pieces.removed).toEqual([directoryOf(h.client.torrents[0]!)]));
    expect(h.saved.records.size).toBe(0);
    expect(h.saved.torrents.size).toBe(0);
  });

  it('the same torrent added again while its removal still runs gets a directory of its own at once', async () => {
    const h = await readyTorrent();
    const old = h.client.torrents[0]!;
    old.holdDestroy = true;
    h.send({ target: 'offscreen', type: 'downloads-remove', infoHash: INFO_HASH });
    h.send({
      target: 'offscreen',
      type: 'downloads-add-torrent-file',
      name: 'album.torrent',
      base64: base64(TORRENT_FILE),
      files: [],
    });
    await vi.waitFor(() => expect(h.client.torrents).toHaveLength(2));
    const again = h.client.torrents[1]!;
    expect(directoryOf(again)).not.toBe(directoryOf(old));
    expect(h.saved.records.get(INFO_HASH)!.pieces).toBe(directoryOf(again));
    old.finishDestroy();
    await vi.waitFor(() => expect(h.pieces.removed).toEqual([directoryOf(old)]));
  });

  it('a download saved before directories had their own name keeps its pieces where they are', async () => {
    const saved = memorySavedDownloads();
    await saved.save(record(INFO_HASH));
    await saved.saveTorrent(INFO_HASH, USER_TORRENT);
    const h = harness(saved, [`underpass-${INFO_HASH}`]);
    await vi.waitFor(() => expect(h.client.torrents).toHaveLength(1));
    expect(directoryOf(h.client.torrents[0]!)).toBe(`underpass-${INFO_HASH}`);
    await vi.waitFor(() => expect(h.pieces.swept).toEqual([[]]));
  });

  it('hostile input adds nothing and throws nothing', async () => {
    const saved = memorySavedDownloads();
    // A record stored under one infohash whose metadata is another torrent's: it comes back as a magnet.
    await saved.save(record('d'.repeat(40)));
    await saved.saveTorrent('d'.repeat(40), USER_TORRENT);
    const h = harness(saved);
    await vi.waitFor(() => expect(h.client.torrents).toHaveLength(1));
    expect(h.client.torrents[0]!.id).toBe(`magnet:?xt=urn:btih:${'d'.repeat(40)}&dn=album`);

    for (const bytes of [
      utf8('not bencode'),
      utf8('d4:infoi1ee'),
      utf8('l-5:abcde'),
      bencode({ info: { ...INFO, pieces: new Uint8Array(19) } }),
    ])
      h.send({
        target: 'offscreen',
        type: 'downloads-add-torrent-file',
        name: 'x.torrent',
        base64: base64(bytes),
        files: [],
      });
    h.send({
      target: 'offscreen',
      type: 'downloads-add-torrent-file',
      name: 'x.torrent',
      base64: '@@@@',
      files: [],
    });
    h.send({ target: 'offscreen', type: 'downloads-add', magnet: 'magnet:?xt=urn:btih:nothex' });
    h.send({ target: 'offscreen', type: 'downloads-pause', infoHash: 'e'.repeat(40) });
    await new Promise((resolve) => setImmediate(resolve));
    expect(h.torrents().map((t) => t.infoHash)).toEqual(['d'.repeat(40)]);
  });

  it(`lists at most ${MAX_DOWNLOADS} torrents`, async () => {
    const h = harness();
    for (let i = 0; i <= MAX_DOWNLOADS; i++)
      h.send({
        target: 'offscreen',
        type: 'downloads-add',
        magnet: `magnet:?xt=urn:btih:${i.toString(16).padStart(40, '0')}`,
      });
    expect(h.torrents()).toHaveLength(MAX_DOWNLOADS);
    await vi.waitFor(() => expect(h.saved.records.size).toBe(MAX_DOWNLOADS));
  });
});

function record(infoHash: string): SavedDownload {
  return { infoHash, name: 'album', trackers: ['udp://t.example:1'], files: [], paused: false, addedAt: 1 };
}

/** Adds the hand-made torrent to a harness's host and makes it ready (its metadata in); returns the torrent. */
async function addReadyTorrent(h: ReturnType<typeof harness>) {
  h.send({
    target: 'offscreen',
    type: 'downloads-add-torrent-file',
    name: 'album.torrent',
    base64: base64(TORRENT_FILE),
    files: [],
  });
  await vi.waitFor(() => expect(h.client.torrents).toHaveLength(1));
  const torrent = h.client.torrents[0]!;
  torrent.giveMetadata(USER_TORRENT);
  torrent.becomeReady();
  return torrent;
}

/** A host with the hand-made torrent added, its metadata in, ready, and its exit wire open. */
async function readyTorrent() {
  const h = harness();
  await addReadyTorrent(h);
  await vi.waitFor(() => expect(h.path.opened).toHaveLength(1));
  await vi.waitFor(() => expect(h.torrents()[0]!.state).toEqual({ status: 'downloading' }));
  return h;
}

describe("DownloadsHost on Protect's path (Firefox)", () => {
  /** A host whose hand-made torrent is added and ready, with Protect on or off as `view` says at each moment. */
  async function sharedHarness(initial: ProtectRunView | undefined) {
    let view = initial;
    const h = harness(undefined, [], () => view);
    const torrent = await addReadyTorrent(h);
    const setView = (next: ProtectRunView | undefined) => {
      view = next;
      h.host.protectChanged();
    };
    return { ...h, torrent, setView };
  }
  const run = (engine: FakeProtect, status: ProtectRunView['status'] = 'protected'): ProtectRunView => ({
    engine: engine as unknown as ProtectPathEngine, // state, want, serviceState, openService and its events
    status,
  });

  it("while Protect runs, the wire goes over its path and no path of Downloads' own is built", async () => {
    const protect = new FakeProtect();
    protect.setState(PROTECTED_TWO_HOP, { status: 'opening' });
    const h = await sharedHarness(run(protect));
    expect(h.ownPaths).toHaveLength(0);
    expect(protect.wanted).toEqual(['torrent']);
    await vi.waitFor(() => expect(protect.opened).toHaveLength(1));
    expect(protect.opened[0]!.request).toMatchObject({ kind: 'torrent', infoHash: INFO_HASH });
    expect(h.pathState()).toEqual({ status: 'connecting' });
    protect.setState(PROTECTED_TWO_HOP, { status: 'ready' });
    expect(h.pathState()).toEqual({ status: 'ready', exitPeerId: 'e'.repeat(22), sharesProtect: true });
    // Protect rebuilding its path (failover, "New path") keeps them there, waiting.
    h.setView(run(protect, 'reconnecting'));
    protect.setState(
      { status: 'reconnecting', reason: 'the first hop closed', attempt: 0 },
      { status: 'none' },
    );
    expect(h.ownPaths).toHaveLength(0);
    expect(h.pathState()).toEqual({ status: 'reconnecting', reason: 'the first hop closed' });
    expect(h.torrents()[0]!.state).toEqual({ status: 'downloading' });
  });

  it('moves to its own path when Protect goes off mid-download, and back when it is on again, keeping the torrent', async () => {
    const protect = new FakeProtect();
    protect.setState(PROTECTED_TWO_HOP, { status: 'ready' });
    const h = await sharedHarness(run(protect));
    await vi.waitFor(() => expect(protect.opened).toHaveLength(1));
    h.torrent.downloaded = 20000;

    // Protect off: its link closes (the wire with it), then its host says off.
    protect.stop();
    h.setView(undefined);
    expect(protect.wanted).toEqual(['torrent', undefined]);
    expect(h.ownPaths).toHaveLength(1);
    expect(h.pathState()).toEqual({ status: 'connecting' });
    await vi.waitFor(() => expect(h.path.opened).toHaveLength(1), { timeout: 5_000 });
    expect(h.path.opened[0]!.request).toMatchObject({ kind: 'torrent', infoHash: INFO_HASH });
    expect(h.torrent.destroyed).toBe(false);
    expect(h.torrents()[0]!.downloaded).toBe(20000);

    // Protect on again (a new run): the own path is let go and the wire goes over Protect's new path.
    const again = new FakeProtect();
    h.setView(run(again, 'connecting'));
    expect(h.path.stopped).toBe(true);
    expect(again.wanted).toEqual(['torrent']);
    again.setState(PROTECTED_TWO_HOP, { status: 'ready' });
    await vi.waitFor(() => expect(again.opened).toHaveLength(1), { timeout: 5_000 });
    expect(h.ownPaths).toHaveLength(1);
    expect(h.torrent.destroyed).toBe(false);
  });

  it("says so when the exit of Protect's path serves no torrents", async () => {
    const protect = new FakeProtect();
    protect.setState(PROTECTED_TWO_HOP, { status: 'lacking', reason: 'no torrents' });
    const h = await sharedHarness(run(protect));
    expect(h.pathState()).toMatchObject({ status: 'failed', code: 'no-torrent-exit' });
  });

  it('a failed Protect hands Downloads back to their own path', async () => {
    const protect = new FakeProtect();
    const h = await sharedHarness(run(protect, 'connecting'));
    expect(h.ownPaths).toHaveLength(0);
    h.setView(undefined);
    expect(h.ownPaths).toHaveLength(1);
  });

  it("stopping Downloads lets go of Protect's path without touching Protect", async () => {
    const protect = new FakeProtect();
    protect.setState(PROTECTED_TWO_HOP, { status: 'ready' });
    const h = await sharedHarness(run(protect));
    h.send({ target: 'offscreen', type: 'downloads-stop' });
    expect(protect.wanted).toEqual(['torrent', undefined]);
    expect(protect.listenerCount('state')).toBe(0);
    expect(protect.listenerCount('service')).toBe(0);
    expect(protect.state).toBe(PROTECTED_TWO_HOP);
  });
});

describe('DownloadsHost in Chrome', () => {
  it("keeps its own path whatever Protect does (Chrome's policy spares the extension's links)", async () => {
    const h = harness();
    h.host.protectChanged();
    expect(h.ownPaths).toHaveLength(1);
    expect(h.path.stopped).toBe(false);
  });
});
