import { Emitter } from '../emitter.js';
import { SessionError, StreamError, type UnderpassError } from '../errors.js';
import { bytesEqual } from '../bytes.js';
import { pipeBoth, type ByteStream } from '../byte-stream.js';
import { LINK_HIGH_WATER, type Link } from '../link.js';
import { decodeCell, encodeCell } from '../tunnel/cells.js';
import { SecureSession } from '../tunnel/session.js';
import type { StaticKeyPair } from '../tunnel/noise.js';
import type { StreamRequest } from '../tunnel/mux-frames.js';

/**
 * Opens the outside connection for a stream. The host implements it (Node: DNS, exit policy on the resolved
 * address, TCP). It rejects with a StreamError whose code the client sees.
 */
export interface Dialer {
  dial(request: StreamRequest): Promise<ByteStream>;
}

export interface ExitEngineOptions {
  staticKey: StaticKeyPair;
  dialer: Dialer;
  /** Sessions across all links; further circuits are closed at once. */
  maxSessions?: number;
  /** Circuits one link (one relay, or one direct client) may hold. */
  maxCircuitsPerLink?: number;
  maxStreamsPerSession?: number;
  handshakeTimeoutMs?: number;
}

export type ExitEngineEvents = {
  'session-closed': [error?: SessionError];
  'stream-failed': [error: UnderpassError];
};

export interface ExitStats {
  links: number;
  sessions: number;
  sessionsTotal: number;
  streamsTotal: number;
}

/**
 * The exit engine: accepts links from relays and direct clients, answers each circuit's handshake with the
 * exit's static key, and turns each stream into an outside connection through the injected dialer.
 */
export class ExitEngine extends Emitter<ExitEngineEvents> {
  private readonly links = new Set<ExitLinkState>();
  private sessions = 0;
  private sessionsTotal = 0;
  private streamsTotal = 0;

  constructor(private readonly options: ExitEngineOptions) {
    super();
  }

  addLink(link: Link): void {
    const state = new ExitLinkState(link, this);
    this.links.add(state);
    link.on('close', () => {
      state.closeAll(new SessionError('link-closed', 'the link to the exit closed'));
      this.links.delete(state);
    });
  }

  stats(): ExitStats {
    return {
      links: this.links.size,
      sessions: this.sessions,
      sessionsTotal: this.sessionsTotal,
      streamsTotal: this.streamsTotal,
    };
  }

  close(): void {
    for (const state of this.links) state.link.close(new SessionError('closed', 'the exit is shutting down'));
    this.links.clear();
  }

  /** @internal */
  createSession(link: Link, circuitId: number, exitKey: Uint8Array): SecureSession | SessionError {
    const { options } = this;
    if (!bytesEqual(exitKey, options.staticKey.publicKey)) {
      return new SessionError('wrong-exit', 'this circuit names another exit key');
    }
    if (this.sessions >= (options.maxSessions ?? 10_000)) return new SessionError('closed', 'exit is full');
    const session = new SecureSession({
      role: 'exit',
      staticKey: options.staticKey,
      handshakeTimeoutMs: options.handshakeTimeoutMs,
      mux: { maxStreams: options.maxStreamsPerSession ?? 256 },
      transport: {
        send: (payload) => link.send(encodeCell({ type: 'data', circuitId, payload })),
        canSend: () => link.bufferedAmount < LINK_HIGH_WATER,
      },
    });
    this.sessions += 1;
    this.sessionsTotal += 1;
    session.once('close', (error) => {
      this.sessions -= 1;
      this.emit('session-closed', error);
    });
    session.mux.on('stream', (stream, request) => {
      this.streamsTotal += 1;
      this.options.dialer.dial(request).then(
        (outside) => {
          if (stream.closed) {
            outside.destroy();
            return;
          }
          stream.accept();
          void pipeBoth(stream, outside);
        },
        (error: unknown) => {
          const streamError =
            error instanceof StreamError ? error : new StreamError('unreachable', String(error));
          this.emit('stream-failed', streamError);
          stream.reject(streamError.code);
        },
      );
    });
    return session;
  }

  /** @internal */
  maxCircuitsPerLink(): number {
    return this.options.maxCircuitsPerLink ?? 1024;
  }
}

/** The circuits of one link. A link that sends malformed cells is a broken or hostile relay: it is closed. */
class ExitLinkState {
  private readonly circuits = new Map<number, SecureSession>();

  constructor(
    readonly link: Link,
    private readonly engine: ExitEngine,
  ) {
    link.on('message', (bytes) => this.onMessage(bytes));
    link.on('drain', () => {
      for (const session of this.circuits.values()) session.drain();
    });
  }

  closeAll(error: SessionError): void {
    for (const session of [...this.circuits.values()]) session.close(error);
    this.circuits.clear();
  }

  private onMessage(bytes: Uint8Array): void {
    const decoded = decodeCell(bytes);
    if (!decoded.ok) {
      this.link.close(new SessionError('malformed-frame', decoded.reason));
      return;
    }
    const cell = decoded.value;
    const existing = this.circuits.get(cell.circuitId);
    switch (cell.type) {
      case 'open': {
        if (existing) {
          this.link.close(new SessionError('malformed-frame', `circuit ${cell.circuitId} opened twice`));
          return;
        }
        if (this.circuits.size >= this.engine.maxCircuitsPerLink()) {
          this.sendClose(cell.circuitId, new SessionError('closed', 'too many circuits on this link'));
          return;
        }
        const session = this.engine.createSession(this.link, cell.circuitId, cell.exitKey);
        if (session instanceof SessionError) {
          this.sendClose(cell.circuitId, session);
          return;
        }
        this.circuits.set(cell.circuitId, session);
        session.once('close', (error) => {
          // Absent already when the far side closed it: then there is no one to tell.
          if (this.circuits.get(cell.circuitId) !== session) return;
          this.circuits.delete(cell.circuitId);
          this.sendClose(cell.circuitId, error ?? new SessionError('closed'));
        });
        return;
      }
      case 'data':
        // Data for a circuit we already closed may still be in flight: drop it.
        existing?.receive(cell.payload);
        return;
      case 'close':
        if (existing) {
          this.circuits.delete(cell.circuitId);
          existing.close(new SessionError(cell.code, `the client side closed: ${cell.code}`));
        }
        return;
    }
  }

  private sendClose(circuitId: number, error: SessionError): void {
    if (!this.link.closed) this.link.send(encodeCell({ type: 'close', circuitId, code: error.code }));
  }
}
