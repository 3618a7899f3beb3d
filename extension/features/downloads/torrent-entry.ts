import type { Clock } from '@underpass/shared/clock';
import type { ByteStream } from '@underpass/shared/streams';
import { ExitPeer, type ExitPeerState } from '@underpass/shared/torrent';
import type { TorrentRequest } from '@underpass/shared/tunnel';
import type { Torrent } from 'webtorrent/dist/webtorrent.min.js';
import { safely } from '../../lib/safely';
import { switchError, truncateReason, type SwitchError } from '../../lib/switch-error';
import {
  MAX_LISTED_FILES,
  type DownloadState,
  type DownloadsPath,
  type TorrentProgress,
} from './downloads-messages';
import { legacyPieceDirectory } from './piece-directory';
import type { SavedDownload } from './saved-downloads';

/**
 * One torrent of the user's: its WebTorrent torrent, its one peer (an ExitPeer: the exit's torrent service
 * through Downloads' path), and what the user chose — which files, paused or not — kept in its saved record.
 * The exit's wire is open only while there is something to fetch: not while paused, and not once every
 * selected file is verified (it opens again if the user then selects more).
 */

/** The exit's wire is reopened sooner than ExitPeer's default: a lost path usually comes back in seconds. */
const EXIT_PEER_RETRY_BASE_MS = 500;
const EXIT_PEER_RETRY_MAX_MS = 4_000;

export type TorrentEntryOptions = {
  /** The record as loaded or made at add; the entry keeps it current and hands it to `save`. */
  record: SavedDownload;
  /** Whether the torrent's metadata was known when it was added (a .torrent, or saved before a restart). */
  hasMetadata: boolean;
  /** Opens a `torrent` stream through Downloads' path. */
  open(request: TorrentRequest): Promise<ByteStream>;
  /** Writes the record (selection or paused changed). */
  save(record: SavedDownload): void;
  /** The metadata arrived from the exit (a magnet's torrent): keep it for a restart. */
  onMetadata(torrent: Torrent): void;
  /** Something the page shows changed. */
  onChange(): void;
  clock?: Clock;
};

export class TorrentEntry {
  readonly infoHash: string;
  /** The OPFS directory of its pieces (piece-directory.ts). */
  readonly pieceDirectory: string;
  torrent: Torrent | undefined;
  failure: SwitchError | undefined;
  /** Blob URLs made for saving, revoked when the torrent goes. */
  urls: string[] = [];
  private peer: ExitPeer | undefined;
  private readonly record: SavedDownload;
  private released = false;

  constructor(private readonly options: TorrentEntryOptions) {
    this.record = { ...options.record, files: [...options.record.files] };
    this.infoHash = this.record.infoHash;
    this.pieceDirectory = this.record.pieces ?? legacyPieceDirectory(this.infoHash);
  }

  get name(): string {
    return this.torrent?.name ?? this.record.name;
  }

  get paused(): boolean {
    return this.record.paused;
  }

  get savedRecord(): SavedDownload {
    return { ...this.record, files: [...this.record.files] };
  }

  /** Takes the WebTorrent torrent made for this entry and keeps its one peer attached while it is needed. */
  attach(torrent: Torrent): void {
    this.torrent = torrent;
    torrent.on('error', (error) => {
      this.failure = { code: 'downloads-failed', reason: truncateReason(String(error)) };
      this.stopPeer();
      this.options.onChange();
    });
    torrent.once('metadata', () => {
      // A stored selection that names files this torrent does not have (storage is not trusted) means all.
      const count = torrent.files.length;
      if (this.record.files.some((index) => index >= count)) this.record.files = [];
      this.applySelection();
      for (const file of torrent.files) file.on('done', () => this.update());
      if (!this.options.hasMetadata) this.options.onMetadata(torrent);
    });
    torrent.on('ready', () => this.update());
    // With the metadata in hand, wait until the stored pieces are verified ('ready'): a finished torrent
    // then never contacts the exit. Without it, the exit's wire is how the metadata comes (WebTorrent 3
    // parses ids asynchronously: a peer may only be added once it knows the infohash).
    if (this.options.hasMetadata) return;
    if (torrent.infoHash) this.update();
    else torrent.once('infoHash', () => this.update());
  }

  pause(): void {
    if (this.record.paused) return;
    this.record.paused = true;
    this.options.save(this.savedRecord);
    this.update();
  }

  /**
   * Resumes a paused torrent; one the exit refused is tried again (a new wire, maybe through another exit).
   * A torrent WebTorrent itself gave up on (its store failed) stays failed: the user removes and adds it.
   */
  resume(): boolean {
    if ((!this.record.paused && !this.failure) || this.torrent?.destroyed) return false;
    this.record.paused = false;
    this.options.save(this.savedRecord);
    if (this.failure && !this.torrent?.destroyed) this.failure = undefined;
    this.update();
    return true;
  }

  /**
   * The files the user wants (empty: all). Refused (false) before the metadata, with an index past the last
   * file, or unchanged. Every file wanted is stored as "all", so files are never left out by accident.
   */
  select(files: readonly number[]): boolean {
    const torrent = this.torrent;
    if (!torrent || torrent.destroyed || torrent.files.length === 0) return false;
    const count = torrent.files.length;
    if (files.some((index) => index >= count)) return false;
    const chosen = [...new Set(files)].sort((a, b) => a - b);
    const next = chosen.length === count ? [] : chosen;
    if (next.length === this.record.files.length && next.every((index, i) => this.record.files[i] === index))
      return false;
    this.record.files = next;
    this.options.save(this.savedRecord);
    this.applySelection();
    this.peer?.select(next);
    this.update();
    return true;
  }

  /** Stops the wire and lets the torrent go: its pieces stay on disk unless `destroyStore`. */
  release(destroyStore: boolean, done?: () => void): void {
    this.released = true;
    this.stopPeer();
    for (const url of this.urls) URL.revokeObjectURL(url);
    this.urls = [];
    const torrent = this.torrent;
    if (torrent && !torrent.destroyed) safely(() => torrent.destroy({ destroyStore }, () => done?.()));
    else done?.();
  }

  progress(path: DownloadsPath): TorrentProgress {
    const torrent = this.torrent;
    const files = torrent?.ready ? torrent.files : [];
    const selected = this.record.files;
    const wanted = (index: number) => selected.length === 0 || selected.includes(index);
    const swarmPeers = this.peer?.swarmPeers;
    return {
      infoHash: this.infoHash,
      name: this.name.slice(0, 1024),
      length: torrent?.length ?? 0,
      downloaded: Math.max(0, Math.floor(torrent?.downloaded ?? 0)),
      remaining: files.reduce(
        (sum, file, index) =>
          wanted(index) ? sum + Math.max(0, file.length - Math.floor(file.downloaded)) : sum,
        0,
      ),
      downloadSpeed: Math.max(0, Math.floor(torrent?.downloadSpeed ?? 0)),
      peers: torrent?.numPeers ?? 0,
      ...(swarmPeers !== undefined ? { swarmPeers } : {}),
      state: this.state(path),
      files: files.slice(0, MAX_LISTED_FILES).map((file, index) => ({
        index,
        path: file.path.slice(0, 1024),
        length: file.length,
        downloaded: Math.min(file.length, Math.max(0, Math.floor(file.downloaded))),
        done: file.done,
        selected: wanted(index),
      })),
    };
  }

  /** Every selected file verified (false before the pieces on disk are checked). */
  get complete(): boolean {
    const torrent = this.torrent;
    if (!torrent?.ready || torrent.files.length === 0) return false;
    const selected = this.record.files;
    return torrent.files.every(
      (file, index) => file.done || (selected.length > 0 && !selected.includes(index)),
    );
  }

  private state(path: DownloadsPath): DownloadState {
    if (this.failure) return { status: 'failed', ...this.failure };
    if (this.complete) return { status: 'done' };
    if (this.record.paused) return { status: 'paused' };
    const peer = this.peer?.state;
    if (peer?.status === 'connected')
      return this.torrent?.ready ? { status: 'downloading' } : { status: 'metadata' };
    if (path.status === 'failed' || path.status === 'reconnecting')
      return { status: 'waiting', reason: path.reason };
    if (peer?.status === 'waiting' && path.status === 'ready')
      return { status: 'waiting', reason: truncateReason(peer.reason) };
    return { status: 'waiting' };
  }

  /** Opens or closes the exit's wire for what the torrent needs now, and tells the page. */
  private update(): void {
    if (this.released) return;
    const torrent = this.torrent;
    const needsPeer =
      torrent !== undefined &&
      !torrent.destroyed &&
      torrent.infoHash !== undefined &&
      !this.failure &&
      !this.record.paused &&
      !this.complete &&
      (torrent.ready || !this.options.hasMetadata);
    if (needsPeer && !this.peer) this.startPeer(torrent);
    if (!needsPeer && this.peer) this.stopPeer();
    this.options.onChange();
  }

  private startPeer(torrent: Torrent): void {
    const peer = new ExitPeer({
      open: (request) => this.options.open(request),
      torrent,
      request: {
        kind: 'torrent',
        infoHash: this.infoHash,
        trackers: [...this.record.trackers],
        files: [...this.record.files],
      },
      retryBaseMs: EXIT_PEER_RETRY_BASE_MS,
      retryMaxMs: EXIT_PEER_RETRY_MAX_MS,
      ...(this.options.clock ? { clock: this.options.clock } : {}),
    });
    this.peer = peer;
    peer.on('state', (state: ExitPeerState) => {
      if (this.peer !== peer) return;
      if (state.status === 'failed') {
        this.failure = switchError(state.code, state.reason, 'downloads-failed');
        this.peer = undefined;
      }
      this.options.onChange();
    });
    peer.start();
  }

  private stopPeer(): void {
    const peer = this.peer;
    this.peer = undefined;
    safely(() => peer?.stop());
  }

  /** Deselects everything, then selects the chosen files (the other order drops a shared boundary piece). */
  private applySelection(): void {
    const torrent = this.torrent;
    if (!torrent || torrent.destroyed || torrent.pieces.length === 0) return;
    const selected = this.record.files;
    safely(() => {
      torrent.deselect(0, torrent.pieces.length - 1);
      if (selected.length === 0) torrent.select(0, torrent.pieces.length - 1);
      else for (const index of selected) torrent.files[index]?.select();
    });
  }
}
