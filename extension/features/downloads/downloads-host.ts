import type { Clock } from '@underpass/shared/clock';
import type { ProtectEngine, ProtectState } from '@underpass/shared/engines';
import { StreamError } from '@underpass/shared/errors';
import type { ByteStream } from '@underpass/shared/streams';
import type { TorrentRequest } from '@underpass/shared/tunnel';
import type { PeerFactory } from '@underpass/shared/links';
import { ISOLATED_CLIENT_OPTIONS, readMagnet } from '@underpass/shared/torrent';
import type WebTorrent from 'webtorrent/dist/webtorrent.min.js';
import type { ChunkStoreClass, Torrent } from 'webtorrent/dist/webtorrent.min.js';
import type { FeatureHost } from '../../lib/engine-host';
import { createPathEngine, type PathEngineOptions } from '../../lib/path-engine';
import type { EngineEvent, OffscreenCommand } from '../../lib/messages';
import { safely } from '../../lib/safely';
import { switchError, toSwitchError, truncateReason } from '../../lib/switch-error';
import type { ProtectEngineState } from '../protect/protect-messages';
import { MAX_DOWNLOADS, type DownloadsEngineState, type DownloadsPath } from './downloads-messages';
import { downloadsRoute, sharedPathOf } from './downloads-route';
import { newPieceDirectory } from './piece-directory';
import type { PieceStorage } from './piece-store';
import {
  indexedDbSavedDownloads,
  MAX_SAVED_METADATA_BYTES,
  type SavedDownload,
  type SavedDownloads,
  type SavedEntry,
} from './saved-downloads';
import { TorrentEntry } from './torrent-entry';
import { fromBase64, readTorrentFile } from './torrent-file';
import { startMediaServer, type MediaRequestSource, type MediaServer } from './media-server';

/**
 * Downloads in the engines' host: the user's own WebTorrent, which finds no one by itself (no tracker, DHT,
 * LSD, PEX or web seeds; magnets stripped of everything it could contact; .torrent files cut down to their
 * info), and whose one peer per torrent is an exit's torrent service reached through this feature's own path
 * (a ProtectEngine that asks the broker for an exit serving torrents), or, in Firefox while Protect is on,
 * through Protect's path (downloads-route.ts). The swarm sees only the exit; the user's client still verifies
 * every piece.
 *
 * The list survives a browser restart: each torrent's record (trackers for the exit, files chosen, paused) and
 * its metadata are saved (saved-downloads.ts), its verified pieces are in OPFS (piece-store.ts), and `start`
 * adds every saved torrent again, so WebTorrent re-verifies the stored pieces and asks the exit only for the
 * rest. Progress goes out as `downloads-state` events once a second while anything is listed.
 */

export const DOWNLOADS_PROGRESS_INTERVAL_MS = 1_000;
/** After the broker found no exit serving torrents (or the path failed thrice), ask again this much later. */
export const DOWNLOADS_PATH_RETRY_MS = 5_000;

export type WebTorrentClient = Pick<WebTorrent, 'add' | 'destroy' | 'on'>;

/** The part of a path the downloads use (ProtectEngine with `needs: 'torrent'`). */
export type DownloadsPathEngine = Pick<ProtectEngine, 'start' | 'stop' | 'open' | 'on'>;

/** The part of Protect's engine Downloads use when they ride its path (want, openService). */
export type ProtectPathEngine = Pick<
  ProtectEngine,
  'state' | 'want' | 'serviceState' | 'openService' | 'on' | 'off'
>;

/** Protect's run as its host has it: its engine, and the status it reports (the engine's own lags at start). */
export type ProtectRunView = { engine: ProtectPathEngine; status: ProtectEngineState['status'] };

/** Where pieces go: the store class WebTorrent is given for a directory, and removal outside WebTorrent. */
export type PieceStorageKit = { storeIn(directory: string): ChunkStoreClass; pieces: PieceStorage };

export type DownloadsHostOptions = {
  createPeer: PeerFactory;
  WebSocket: typeof WebSocket;
  emit: (event: EngineEvent) => void;
  /** The user's WebTorrent, loaded on first use (a separate chunk: Protect and Volunteer never load it). */
  createClient?: () => Promise<WebTorrentClient>;
  /** Pieces in OPFS by default (loaded with the client). */
  loadStorage?: () => Promise<PieceStorageKit>;
  /** The list that survives a restart; IndexedDB by default. */
  saved?: SavedDownloads;
  /** Downloads' path; createPathEngine by default. */
  createPath?: (options: PathEngineOptions) => DownloadsPathEngine;
  /**
   * Protect's run, where Downloads ride Protect's path while it is on (Firefox: downloads-route.ts); absent
   * where they always build their own (Chrome). The host is told of each change with `protectChanged`.
   */
  protectRun?: () => ProtectRunView | undefined;
  clock?: Clock;
};

/** One run of Downloads, from start to stop: callbacks check it is still the current one. */
type DownloadsRun = {
  /** What the path is built from. */
  settings: Pick<PathEngineOptions, 'signalingUrl' | 'directoryKeys' | 'mode'>;
  /** Downloads' own path, while they use it. */
  own: DownloadsPathEngine | undefined;
  /** Protect's path, while they ride it: its engine, and how to stop listening to it. */
  shared: { engine: ProtectPathEngine; detach: () => void } | undefined;
  client: Promise<WebTorrentClient>;
  storage: Promise<PieceStorageKit>;
  path: DownloadsPath;
  entries: Map<string, TorrentEntry>;
  /** Bytes of metadata saved for all torrents (bounded by MAX_SAVED_METADATA_BYTES). */
  metadataBytes: Map<string, number>;
  /** Removed while the saved list was still loading: not to be brought back by it. */
  removedWhileLoading: Set<string>;
  /** Every piece directory this run handed to a torrent: the sweep at start keeps them. */
  directories: Set<string>;
  loading: boolean;
  lastAddedAt: number;
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

async function loadOpfsStorage(): Promise<PieceStorageKit> {
  const { pieceStoreIn, opfsPieceStorage } = await import('./piece-store');
  return { storeIn: pieceStoreIn, pieces: opfsPieceStorage() };
}

export class DownloadsHost implements FeatureHost<'downloads'> {
  readonly name = 'downloads';
  private run: DownloadsRun | undefined;
  private readonly saved: SavedDownloads;

  constructor(private readonly options: DownloadsHostOptions) {
    this.saved = options.saved ?? indexedDbSavedDownloads();
  }

  get state(): DownloadsEngineState {
    const run = this.run;
    if (!run) return { status: 'off' };
    const torrents = [...run.entries.values()].map((entry) => entry.progress(run.path));
    return { status: 'on', path: run.path, torrents };
  }

  handle(command: OffscreenCommand): boolean {
    const run = this.run;
    switch (command.type) {
      case 'downloads-start':
        if (!run) this.start(command);
        return true;
      case 'downloads-stop':
        this.stop();
        return true;
      case 'downloads-add':
        if (run) this.addMagnet(run, command.magnet);
        return true;
      case 'downloads-add-torrent-file':
        if (run) void this.addTorrentFile(run, command.base64, command.files);
        return true;
      case 'downloads-remove':
        if (run) this.remove(run, command.infoHash);
        return true;
      case 'downloads-pause':
        if (run) run.entries.get(command.infoHash)?.pause();
        return true;
      case 'downloads-resume':
        if (run) run.entries.get(command.infoHash)?.resume();
        return true;
      case 'downloads-select':
        if (run) run.entries.get(command.infoHash)?.select(command.files);
        return true;
      case 'downloads-save':
        if (run) void this.save(run, command.infoHash, command.fileIndex);
        return true;
      default:
        return false;
    }
  }

  shutdown(): void {
    this.stop();
  }

  /**
   * Protect started, stopped or changed state: Downloads move to the path they should use now (a no-op unless
   * downloads-route.ts says otherwise).
   */
  protectChanged(): void {
    if (this.run) this.route(this.run);
  }

  private start(command: Extract<OffscreenCommand, { type: 'downloads-start' }>): void {
    const run: DownloadsRun = {
      settings: {
        signalingUrl: command.signalingUrl,
        directoryKeys: command.directoryKeys,
        mode: command.mode,
      },
      own: undefined,
      shared: undefined,
      client: (this.options.createClient ?? createIsolatedClient)(),
      storage: (this.options.loadStorage ?? loadOpfsStorage)(),
      path: { status: 'connecting' },
      entries: new Map(),
      metadataBytes: new Map(),
      removedWhileLoading: new Set(),
      directories: new Set(),
      loading: true,
      lastAddedAt: 0,
      ticker: setInterval(() => {
        if (this.run === run && run.entries.size > 0) this.report();
      }, DOWNLOADS_PROGRESS_INTERVAL_MS),
      media: startMediaServer({
        torrentOf: (infoHash) => run.entries.get(infoHash)?.torrent,
        // Firefox's host is the background page: the player posts its requests to this window (no worker).
        ...(import.meta.env.FIREFOX ? { source: globalThis as unknown as MediaRequestSource } : {}),
      }),
    };
    this.run = run;
    Promise.all([run.client, run.storage]).then(
      ([client]) => client.on('error', (error) => console.warn('underpass downloads:', String(error))),
      (error: unknown) => {
        if (this.run !== run) return;
        run.path = { status: 'failed', ...toSwitchError(error, 'downloads-failed') };
        this.report();
      },
    );
    void this.restore(run);
    this.route(run);
  }

  /**
   * Puts the run on the path it should use now. Leaving a path closes the torrents' wires on it; each
   * ExitPeer opens its wire again through `openWire`, on the new path, and WebTorrent keeps what it verified.
   */
  private route(run: DownloadsRun): void {
    const protect = this.options.protectRun?.();
    const ride =
      protect && downloadsRoute({ sharesProtectPath: true, protect: protect.status }) === 'protect'
        ? protect.engine
        : undefined;
    if (ride ? run.shared?.engine === ride : run.own !== undefined) return;
    this.leavePath(run);
    if (ride) this.rideProtect(run, ride);
    else this.buildOwnPath(run);
    this.report();
  }

  private leavePath(run: DownloadsRun): void {
    if (run.retryTimer !== undefined) clearTimeout(run.retryTimer);
    run.retryTimer = undefined;
    const { own, shared } = run;
    run.own = undefined;
    run.shared = undefined;
    if (own) safely(() => own.stop());
    if (shared) safely(() => shared.detach());
  }

  /** Downloads' torrent streams in a session of their own over Protect's path (downloads-route.ts). */
  private rideProtect(run: DownloadsRun, engine: ProtectPathEngine): void {
    const update = () => {
      if (this.run !== run || run.shared?.engine !== engine) return;
      run.path = sharedPathOf(engine.state, engine.serviceState());
      this.report();
    };
    engine.on('state', update);
    engine.on('service', update);
    run.shared = {
      engine,
      detach: () => {
        engine.off('state', update);
        engine.off('service', update);
        engine.want(undefined);
      },
    };
    run.path = sharedPathOf(engine.state, engine.serviceState());
    engine.want('torrent');
  }

  /** Downloads' own path: a ProtectEngine that asks the broker for an exit serving torrents. */
  private buildOwnPath(run: DownloadsRun): void {
    const engine = (this.options.createPath ?? createPathEngine)({
      ...run.settings,
      needs: 'torrent',
      WebSocket: this.options.WebSocket,
      createPeer: this.options.createPeer,
    });
    run.own = engine;
    run.path = { status: 'connecting' };
    engine.on('state', (state: ProtectState) => {
      if (this.run !== run || run.own !== engine) return;
      const path = pathOf(state);
      if (path) run.path = path;
      this.report();
    });
    this.startOwnPath(run, engine);
  }

  /** Builds the path; when it cannot be built (no exit serves torrents, say), tries again after a pause. */
  private startOwnPath(run: DownloadsRun, engine: DownloadsPathEngine): void {
    engine.start().catch(() => {
      if (this.run !== run || run.own !== engine) return;
      run.retryTimer = setTimeout(() => {
        run.retryTimer = undefined;
        if (this.run === run && run.own === engine) this.startOwnPath(run, engine);
      }, DOWNLOADS_PATH_RETRY_MS);
    });
  }

  /** A torrent's wire, through whichever path the run uses now. */
  private openWire(run: DownloadsRun, request: TorrentRequest): Promise<ByteStream> {
    if (run.shared) return run.shared.engine.openService(request);
    if (run.own) return run.own.open(request);
    return Promise.reject(new StreamError('unreachable', 'no path is up'));
  }

  /** Ends the run: wires closed, torrents let go, pieces and the saved list kept for the next start. */
  private stop(): void {
    const run = this.run;
    this.run = undefined;
    if (run) {
      clearInterval(run.ticker);
      run.media.stop();
      for (const entry of run.entries.values()) entry.release(false);
      this.leavePath(run);
      void run.client.then(
        (client) => safely(() => client.destroy()),
        () => {},
      );
    }
    this.report();
  }

  /** Adds every saved torrent again (pieces on disk are re-verified), then deletes pieces nobody owns. */
  private async restore(run: DownloadsRun): Promise<void> {
    let saved: SavedEntry[];
    try {
      saved = await this.saved.load();
    } catch (error) {
      console.warn('underpass downloads: the saved list cannot be read:', String(error));
      saved = [];
    }
    if (this.run !== run) return;
    run.loading = false;
    for (const { download, torrent } of saved) {
      run.lastAddedAt = Math.max(run.lastAddedAt, download.addedAt);
      if (run.removedWhileLoading.has(download.infoHash) || run.entries.has(download.infoHash)) continue;
      if (run.entries.size >= MAX_DOWNLOADS) break;
      const userTorrent = torrent ? await this.checkSavedTorrent(download.infoHash, torrent) : undefined;
      if (this.run !== run) return;
      if (run.removedWhileLoading.has(download.infoHash) || run.entries.has(download.infoHash)) continue;
      if (userTorrent) run.metadataBytes.set(download.infoHash, userTorrent.length);
      this.addEntry(run, download, userTorrent ?? magnetFor(download));
    }
    run.removedWhileLoading.clear();
    this.report();
    try {
      const { pieces } = await run.storage;
      const swept = await pieces.sweep((directory) => run.directories.has(directory));
      if (swept > 0)
        console.info(`underpass downloads: removed the pieces of ${swept} torrents no longer listed`);
    } catch (error) {
      console.warn('underpass downloads: pieces not swept:', String(error));
    }
  }

  /** Saved metadata is read like a dropped .torrent (storage is not trusted): undefined unless it is sound. */
  private async checkSavedTorrent(infoHash: string, bytes: Uint8Array): Promise<Uint8Array | undefined> {
    const read = await readTorrentFile(bytes).catch(() => undefined);
    return read?.ok && read.torrent.infoHash === infoHash ? read.torrent.userTorrent : undefined;
  }

  private addMagnet(run: DownloadsRun, input: string): void {
    const read = readMagnet(input);
    if (!read.ok) return;
    const { infoHash, name, trackers, userMagnet } = read.magnet;
    const download = newRecord(run, infoHash, name ?? infoHash, trackers);
    if (this.addEntry(run, download, userMagnet)) this.persist(download);
  }

  /** A .torrent: the exit gets its infohash and trackers, the user's client only its info dictionary. */
  private async addTorrentFile(run: DownloadsRun, base64: string, files: readonly number[]): Promise<void> {
    const bytes = fromBase64(base64);
    if (!bytes) return;
    const read = await readTorrentFile(bytes);
    if (!read.ok || this.run !== run) return;
    const { infoHash, name, trackers, userTorrent, fileCount } = read.torrent;
    const chosen = files.every((index) => index < fileCount) ? [...new Set(files)] : [];
    const download = { ...newRecord(run, infoHash, name, trackers), files: chosen };
    if (!this.addEntry(run, download, userTorrent)) return;
    this.persist(download);
    this.persistTorrent(run, infoHash, userTorrent);
  }

  /** Lists a torrent and hands it to the user's WebTorrent; false when it is listed already or the list is full. */
  private addEntry(run: DownloadsRun, download: SavedDownload, torrentId: string | Uint8Array): boolean {
    if (run.entries.has(download.infoHash) || run.entries.size >= MAX_DOWNLOADS) return false;
    run.removedWhileLoading.delete(download.infoHash);
    const entry = new TorrentEntry({
      record: download,
      hasMetadata: typeof torrentId !== 'string',
      open: (request) => this.openWire(run, request),
      save: (record) => this.persist(record),
      onMetadata: (torrent) => void this.keepMetadata(run, entry, torrent),
      onChange: () => {
        if (this.run === run && run.entries.get(download.infoHash) === entry) this.report();
      },
      ...(this.options.clock ? { clock: this.options.clock } : {}),
    });
    run.entries.set(download.infoHash, entry);
    run.directories.add(entry.pieceDirectory);
    this.report();
    Promise.all([run.client, run.storage]).then(
      ([client, storage]) => {
        if (this.run !== run || run.entries.get(download.infoHash) !== entry) return;
        // No trackers of its own, pieces in this add's own OPFS directory.
        // `deselect`: WebTorrent would otherwise select every piece it finds missing when it checks the stored
        // ones, after the entry applied the user's choice, and fetch the files left out.
        const store = storage.storeIn(entry.pieceDirectory);
        entry.attach(client.add(torrentId, { announce: [], store, deselect: true }));
      },
      () => {}, // the run's path already says why
    );
    return true;
  }

  /** A magnet's metadata, once the exit sent it: saved (info only) so a restart needs no exit for it. */
  private async keepMetadata(run: DownloadsRun, entry: TorrentEntry, torrent: Torrent): Promise<void> {
    const file = torrent.torrentFile;
    if (!file) return;
    const read = await readTorrentFile(file);
    if (!read.ok || read.torrent.infoHash !== entry.infoHash) return;
    if (this.run !== run || run.entries.get(entry.infoHash) !== entry) return;
    this.persistTorrent(run, entry.infoHash, read.torrent.userTorrent);
  }

  private persist(download: SavedDownload): void {
    this.saved
      .save(download)
      .catch((error: unknown) => console.warn('underpass downloads: not saved:', String(error)));
  }

  /** Saves a torrent's metadata unless all saved metadata would pass its budget (then the exit sends it again). */
  private persistTorrent(run: DownloadsRun, infoHash: string, bytes: Uint8Array): void {
    let used = 0;
    for (const [key, size] of run.metadataBytes) if (key !== infoHash) used += size;
    if (used + bytes.length > MAX_SAVED_METADATA_BYTES) return;
    run.metadataBytes.set(infoHash, bytes.length);
    this.saved
      .saveTorrent(infoHash, bytes)
      .catch((error: unknown) => console.warn('underpass downloads: metadata not saved:', String(error)));
  }

  /** Forgets a torrent for good: its wire, its pieces on disk, its saved record. */
  private remove(run: DownloadsRun, infoHash: string): void {
    const entry = run.entries.get(infoHash);
    if (!entry && !run.loading) return;
    if (run.loading) run.removedWhileLoading.add(infoHash);
    run.entries.delete(infoHash);
    run.metadataBytes.delete(infoHash);
    this.saved
      .remove(infoHash)
      .catch((error: unknown) => console.warn('underpass downloads: not removed:', String(error)));
    // Its pieces: WebTorrent deletes its store's directory; the directory is removed again in case the torrent
    // had no store yet. A download removed while the list loads has no entry: the sweep at start takes its
    // pieces. The same torrent added again gets a directory of its own, so nothing here can race it.
    if (entry) {
      const directory = entry.pieceDirectory;
      entry.release(true, () => {
        run.directories.delete(directory);
        void run.storage.then(({ pieces }) => pieces.remove(directory)).catch(() => {});
      });
    }
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

function newRecord(run: DownloadsRun, infoHash: string, name: string, trackers: string[]): SavedDownload {
  // Strictly increasing, so the saved list comes back in the order the user added to it.
  run.lastAddedAt = Math.max(Date.now(), run.lastAddedAt + 1);
  return {
    infoHash,
    name: name.slice(0, 1024),
    trackers,
    files: [],
    paused: false,
    addedAt: run.lastAddedAt,
    pieces: newPieceDirectory(infoHash),
  };
}

/** A saved torrent without its metadata comes back as the magnet the user's client had: infohash and name. */
function magnetFor(download: SavedDownload): string {
  const read = readMagnet(`magnet:?xt=urn:btih:${download.infoHash}&dn=${encodeURIComponent(download.name)}`);
  return read.ok ? read.magnet.userMagnet : `magnet:?xt=urn:btih:${download.infoHash}`;
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
