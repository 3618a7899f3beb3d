import { Emitter } from '../emitter.js';
import { SessionError, StreamError } from '../errors.js';
import type { Link } from '../links/link.js';
import { linkHasRoom } from '../links/backpressure.js';
import { decodeCell, encodeCell } from '../tunnel/cells.js';
import { SecureSession } from '../tunnel/session.js';
import type { MuxStream } from '../tunnel/mux-stream.js';
import type { EarlyOpen, ReceiveWindowState } from '../tunnel/mux.js';
import type { Aead } from '../tunnel/noise.js';
import type { StreamRequest } from '../tunnel/mux-frames.js';
import type { ExitTrust } from '../trust/exit-trust.js';

export interface TunnelClientOptions {
  /** The first hop: a relay (two-hop) or the exit itself (direct mode). */
  link: Link;
  /** The exit's static public key, as the broker (or the user's pin) names it. */
  exitKey: Uint8Array;
  /**
   * What makes that key an exit: its certificate (in the Noise reply) must verify under these directory keys
   * before any stream frame is sent; otherwise the session ends with `untrusted-exit`.
   */
  trust: ExitTrust;
  circuitId?: number;
  handshakeTimeoutMs?: number;
  /** ChaCha20-Poly1305 implementation for the session; default @noble/ciphers. */
  aead?: Aead;
}

export type TunnelClientEvents = { close: [error?: SessionError] };

export interface TunnelStats {
  bytesUp: number;
  bytesDown: number;
  streamsOpen: number;
}

/**
 * The client engine: one circuit over its first-hop link and the encrypted session to the exit inside it.
 * Knows nothing of signaling or WebRTC; ProtectEngine builds the path and hands the link in.
 */
export class TunnelClient extends Emitter<TunnelClientEvents> {
  readonly session: SecureSession;
  private readonly circuitId: number;

  constructor(private readonly options: TunnelClientOptions) {
    super();
    const { link } = options;
    this.circuitId = options.circuitId ?? 1;
    link.send(encodeCell({ type: 'open', circuitId: this.circuitId, exitKey: options.exitKey }));
    this.session = new SecureSession({
      role: 'client',
      exitKey: options.exitKey,
      trust: options.trust,
      handshakeTimeoutMs: options.handshakeTimeoutMs,
      aead: options.aead,
      transport: {
        send: (payload) => link.send(encodeCell({ type: 'data', circuitId: this.circuitId, payload })),
        canSend: () => linkHasRoom(link),
      },
    });
    link.on('message', this.onMessage);
    link.on('drain', this.onDrain);
    link.on('close', this.onLinkClose);
    this.session.on('close', (error) => {
      link.off('message', this.onMessage);
      link.off('drain', this.onDrain);
      link.off('close', this.onLinkClose);
      if (!link.closed) {
        link.send(encodeCell({ type: 'close', circuitId: this.circuitId, code: error?.code ?? 'closed' }));
      }
      this.emit('close', error);
    });
  }

  ready(): Promise<void> {
    return this.session.whenReady();
  }

  get closed(): boolean {
    return this.session.closed;
  }

  async open(request: StreamRequest): Promise<MuxStream> {
    if (this.session.closed) throw new StreamError('session-closed', 'no tunnel');
    await this.session.whenReady();
    return this.session.mux.open(request);
  }

  /**
   * A stream whose request may be written at once, before the exit has connected (Mux.openEarly). Only on a
   * session that is ready: throws a StreamError otherwise, as for a stream that cannot be started.
   */
  openEarly(request: StreamRequest): EarlyOpen {
    if (this.session.closed) throw new StreamError('session-closed', 'no tunnel');
    if (!this.session.established) throw new StreamError('unreachable', 'the tunnel is not ready yet');
    return this.session.mux.openEarly(request);
  }

  /** Asks the exit to echo `payload` (PING): only an exit that answers PING may be asked (see ProtectEngine). */
  ping(payload: Uint8Array): void {
    this.session.mux.ping(payload);
  }

  /** Hears the exit's PONGs; returns the way to stop. */
  onPong(listener: (payload: Uint8Array) => void): () => void {
    this.session.mux.on('pong', listener);
    return () => this.session.mux.off('pong', listener);
  }

  stats(): TunnelStats {
    const { mux } = this.session;
    return { bytesUp: mux.bytesSent, bytesDown: mux.bytesReceived, streamsOpen: mux.streamCount };
  }

  /** How the tunnel's receive windows see the path (for traces). */
  get receiveWindowState(): ReceiveWindowState {
    return this.session.mux.receiveWindowState;
  }

  close(error?: SessionError): void {
    this.session.close(error);
  }

  private readonly onMessage = (bytes: Uint8Array): void => {
    const decoded = decodeCell(bytes);
    if (!decoded.ok) {
      this.session.close(new SessionError('malformed-frame', decoded.reason));
      return;
    }
    const cell = decoded.value;
    if (cell.circuitId !== this.circuitId) return; // another circuit on a shared link (direct mode tests)
    if (cell.type === 'data') this.session.receive(cell.payload);
    else if (cell.type === 'close')
      this.session.close(new SessionError(cell.code, `the path closed: ${cell.code}`));
    else this.session.close(new SessionError('malformed-frame', 'unexpected OPEN cell from the path'));
  };

  private readonly onDrain = (): void => this.session.drain();

  private readonly onLinkClose = (error?: SessionError): void => {
    this.session.close(error ?? new SessionError('link-closed', 'the first hop closed'));
  };
}
