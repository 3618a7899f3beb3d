import { systemClock, type Clock } from '../clock.js';
import { Emitter } from '../emitter.js';
import { StreamError, type StreamErrorCode, toUnderpassError } from '../errors.js';
import type { ByteStream } from '../streams/byte-stream.js';
import type { TorrentRequest } from '../tunnel/mux-frames.js';
import { PeerDuplex } from './peer-duplex.js';

/** The part of a WebTorrent torrent the user's side needs: room for one peer. */
export interface PeerTorrent {
  addPeer(peer: object): boolean;
}

export type ExitPeerState =
  | { status: 'connecting' }
  /** The torrent's one peer, the exit's torrent service, is attached. */
  | { status: 'connected' }
  /** No wire to the exit (the path is being rebuilt, the exit went away): trying again after a pause. */
  | { status: 'waiting'; code: StreamErrorCode; reason: string; attempt: number }
  /** The exit said no for good (the torrent itself is the problem): trying again would not help. */
  | { status: 'failed'; code: StreamErrorCode; reason: string }
  | { status: 'stopped' };

export interface ExitPeerOptions {
  /** Opens a `torrent` stream through the user's path (ProtectEngine.open, or a downloads path). */
  open(request: TorrentRequest): Promise<ByteStream>;
  torrent: PeerTorrent;
  /** The first request; `select` changes its files. */
  request: TorrentRequest;
  clock?: Clock;
  /** Pause before trying again: attempt n waits min(base·2ⁿ, max). */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export const DEFAULT_EXIT_PEER_RETRY_BASE_MS = 1_000;
export const DEFAULT_EXIT_PEER_RETRY_MAX_MS = 30_000;

/** Refusals about the torrent, not the path: another try through another path gets the same answer. */
const FINAL_CODES: ReadonlySet<StreamErrorCode> = new Set([
  'metadata-timeout',
  'too-large',
  'policy-denied',
  'protocol',
]);

/**
 * The user's side of a download: keeps the torrent's one peer, a `torrent` stream to an exit's torrent
 * service, attached. WebTorrent raises nothing when its only peer goes away (it just sits at the same
 * percentage), so the stream's end is the signal: the wire is opened again, after a pause, until it works or
 * the exit refuses the torrent itself. Pieces verified before stay verified; WebTorrent asks only for the rest.
 */
export class ExitPeer extends Emitter<{ state: [state: ExitPeerState] }> {
  private current: ExitPeerState = { status: 'connecting' };
  private readonly clock: Clock;
  private retryTimer: unknown;
  private stream: ByteStream | undefined;
  private wires = 0;
  private stopped = false;

  constructor(private readonly options: ExitPeerOptions) {
    super();
    this.clock = options.clock ?? systemClock;
  }

  get state(): ExitPeerState {
    return this.current;
  }

  /**
   * Peers the exit's torrent service has in the swarm for this torrent, as the exit last said on the wire;
   * undefined until it has said.
   */
  get swarmPeers(): number | undefined {
    return undefined;
  }

  /** The files the user wants now (empty: every file): told to the exit on the open wire and on every later one. */
  select(files: readonly number[]): void {
    this.options.request = { ...this.options.request, files: [...files] };
  }

  start(): void {
    this.attach(0);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retryTimer !== undefined) this.clock.clearTimeout(this.retryTimer);
    this.stream?.destroy();
    this.setState({ status: 'stopped' });
  }

  private attach(attempt: number): void {
    if (this.stopped) return;
    this.setState({ status: 'connecting' });
    this.options.open(this.options.request).then(
      (stream) => {
        if (this.stopped) return stream.destroy();
        if (stream.closed)
          return this.lost(new StreamError('reset', 'the exit ended the wire at once'), attempt);
        this.stream = stream;
        this.wires += 1;
        stream.once('close', (error) =>
          this.lost(error ?? new StreamError('reset', 'the exit ended the wire'), 0),
        );
        this.options.torrent.addPeer(new PeerDuplex(stream, `underpass-exit-${this.wires}`));
        this.setState({ status: 'connected' });
      },
      (error: unknown) => this.lost(error, attempt),
    );
  }

  private lost(error: unknown, attempt: number): void {
    if (this.stopped) return;
    this.stream = undefined;
    const failure =
      error instanceof StreamError ? error : new StreamError('unreachable', toUnderpassError(error).message);
    if (FINAL_CODES.has(failure.code)) {
      this.setState({ status: 'failed', code: failure.code, reason: failure.message });
      return;
    }
    this.setState({ status: 'waiting', code: failure.code, reason: failure.message, attempt });
    const base = this.options.retryBaseMs ?? DEFAULT_EXIT_PEER_RETRY_BASE_MS;
    const delay = Math.min(base * 2 ** attempt, this.options.retryMaxMs ?? DEFAULT_EXIT_PEER_RETRY_MAX_MS);
    this.retryTimer = this.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.attach(attempt + 1);
    }, delay);
  }

  private setState(state: ExitPeerState): void {
    this.current = state;
    this.emit('state', state);
  }
}
