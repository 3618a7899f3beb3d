import { systemClock, type Clock } from '../clock.js';
import { Emitter } from '../emitter.js';
import { StreamError, type StreamErrorCode, toUnderpassError } from '../errors.js';
import type { ByteStream } from '../streams/byte-stream.js';
import type { TorrentRequest } from '../tunnel/mux-frames.js';
import { exitWireOf, prepareExitWire, type ExitWire, type PeersById } from './exit-wire.js';
import { PeerDuplex } from './peer-duplex.js';
import { sendSelection } from './selection-extension.js';

/** The part of a WebTorrent torrent the user's side needs: room for one peer, and that peer's wire. */
export interface PeerTorrent {
  addPeer(peer: object): boolean;
  /**
   * WebTorrent's peers by id (internal, not in its typings): the exit's wire is read there, to tell the exit a
   * new selection and hear its swarm peers. Without it (not a WebTorrent torrent) the stream still carries the
   * download, but `select` reaches only later wires and `swarmPeers` stays undefined.
   */
  readonly _peers?: PeersById | null;
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
  /** The current stream's wire, once WebTorrent made it. */
  private wire: ExitWire | undefined;
  /** The selection the current wire's exit has: the OPEN's, then each one sent on the wire. */
  private wireFiles: readonly number[] = [];
  private peers: number | undefined;
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
   * Peers the exit's torrent service has in the swarm for this torrent, as the exit last said on the current
   * wire (the `underpass_peers` extension); undefined until it has said, and again while no wire is attached.
   * A change is announced by emitting `state` again (with the same state).
   */
  get swarmPeers(): number | undefined {
    return this.peers;
  }

  /**
   * The files the user wants now (indices; empty: every file): told to the exit at once on the open wire (the
   * `underpass_select` extension; if the exit has not yet sent its extended handshake, as soon as it has), and
   * in the OPEN of every later wire. The exit refuses a selection over its limits by ending the wire
   * (`too-large`, `limit`): the state becomes `failed`.
   */
  select(files: readonly number[]): void {
    this.options.request = { ...this.options.request, files: [...files] };
    this.tellSelection();
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
    const { request } = this.options;
    this.options.open(request).then(
      (stream) => {
        if (this.stopped) return stream.destroy();
        if (stream.closed)
          return this.lost(new StreamError('reset', 'the exit ended the wire at once'), attempt);
        this.stream = stream;
        this.wires += 1;
        this.wireFiles = request.files;
        stream.once('close', (error) =>
          this.lost(error ?? new StreamError('reset', 'the exit ended the wire'), 0),
        );
        const id = `underpass-exit-${this.wires}`;
        const { torrent } = this.options;
        torrent.addPeer(new PeerDuplex(stream, id));
        this.adopt(stream, exitWireOf(torrent._peers, id));
        this.setState({ status: 'connected' });
      },
      (error: unknown) => this.lost(error, attempt),
    );
  }

  /** Listens on the new wire: the exit's swarm peers, and its extended handshake (a selection may wait for it). */
  private adopt(stream: ByteStream, wire: ExitWire | undefined): void {
    this.wire = wire;
    if (!wire) return;
    prepareExitWire(wire, {
      onSwarmPeers: (peers) => {
        if (this.stream !== stream || peers === this.peers) return;
        this.peers = peers;
        this.emit('state', this.current);
      },
    });
    wire.on('extended', (extension) => {
      if (extension === 'handshake' && this.wire === wire) this.tellSelection();
    });
  }

  /** Sends the selection on the current wire if its exit does not have it yet. */
  private tellSelection(): void {
    const wire = this.wire;
    const { files } = this.options.request;
    if (!wire || wire.destroyed || sameFiles(files, this.wireFiles)) return;
    if (sendSelection(wire, files)) this.wireFiles = files;
  }

  private lost(error: unknown, attempt: number): void {
    if (this.stopped) return;
    this.stream = undefined;
    this.wire = undefined;
    this.peers = undefined;
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

function sameFiles(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((index, i) => index === b[i]);
}
