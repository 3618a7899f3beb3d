import { Emitter } from '../emitter.js';
import { errorMessage, SessionError, StreamError, type UnderpassError } from '../errors.js';
import { systemClock, type Clock } from '../clock.js';
import { withDeadline } from '../deadline.js';
import { ThrottledStream } from '../rate-limit.js';
import { bytesEqual } from '../bytes.js';
import { pipeBoth, type ByteStream } from '../streams/byte-stream.js';
import type { Link } from '../links/link.js';
import { linkHasRoom } from '../links/backpressure.js';
import { decodeCell, encodeCell } from '../tunnel/cells.js';
import { SecureSession } from '../tunnel/session.js';
import type { Aead, StaticKeyPair } from '../tunnel/noise.js';
import type { StreamRequest } from '../tunnel/mux-frames.js';
import { DEFAULT_MAX_STREAMS } from '../tunnel/mux.js';
import {
  CLIENT_FAULTS,
  DEFAULT_SESSION_LIMITS,
  resetWhenIdle,
  SessionGuard,
  type SessionLimits,
} from './exit-limits.js';

/**
 * Opens the outside connection for a stream. The host implements it (Node: DNS, exit policy on the resolved
 * address, TCP). It rejects with a StreamError whose code the client sees.
 */
/** Which client session a stream belongs to, for limits a service counts per session (torrents). */
export interface StreamContext {
  /** The same for every stream of one client session at this exit, never reused by another session. */
  readonly sessionId: number;
}

export interface Dialer {
  dial(request: StreamRequest, context: StreamContext): Promise<ByteStream>;
}

export interface ExitEngineOptions {
  staticKey: StaticKeyPair;
  /** This exit's certificate (shared/src/trust), sent in every handshake reply; asked for per session. */
  certificate: () => Uint8Array;
  dialer: Dialer;
  /** Sessions across all links; further circuits are closed at once. */
  maxSessions?: number;
  /** Circuits one link (one relay, or one direct client) may hold. */
  maxCircuitsPerLink?: number;
  /** Circuits all links from one peer (as `addLink` names it: the broker's id for a relay) may hold together. */
  maxCircuitsPerPeer?: number;
  /** Streams open at once in one session; further opens fail with `limit`. */
  maxStreamsPerSession?: number;
  handshakeTimeoutMs?: number;
  /** ChaCha20-Poly1305 implementation for the session; default @noble/ciphers. */
  aead?: Aead;
  /** Per-session limits beyond the counts above. */
  limits?: Partial<SessionLimits>;
  /** Injected so tests can drive rates and timeouts. */
  clock?: Clock;
}

/** Sessions the exit serves at once, across all links. */
export const DEFAULT_MAX_SESSIONS = 10_000;
/**
 * Circuits one link (one relay, or one direct client) may hold at the exit: what a relay at the most capacity
 * a volunteer can set (64 clients) opens with every client at its relay limit (8 circuits), and no more. So no
 * one link takes more than 1/19 of the sessions: filling the exit takes 20 links (it took 10 at 1024).
 */
export const DEFAULT_MAX_CIRCUITS_PER_LINK = 512;
/** Circuits the links of one peer may hold together: a relay that asks for a second link gets no more room. */
export const DEFAULT_MAX_CIRCUITS_PER_PEER = 512;

/** Who is at the far end of a link, when the host knows (the broker's `link` offer says). */
export interface LinkOrigin {
  /** The same for every link from one peer: links from one peer share `maxCircuitsPerPeer`. */
  peerId: string;
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
  /** Sessions ended because they broke a limit (floods, window overruns, too many opens). */
  sessionsCutOff: number;
}

/** One circuit's session and the guard that charges its inbound messages. */
type ExitCircuit = { session: SecureSession; guard: SessionGuard };

/**
 * The exit engine: accepts links from relays and direct clients, answers each circuit's handshake with the
 * exit's static key, and turns each stream into an outside connection through the injected dialer.
 */
export class ExitEngine extends Emitter<ExitEngineEvents> {
  private readonly links = new Set<IncomingLink>();
  private sessions = 0;
  private sessionsTotal = 0;
  private streamsTotal = 0;
  private sessionsCutOff = 0;
  private readonly limits: SessionLimits;
  private readonly clock: Clock;
  /** Circuits held per peer id, over all of that peer's links; an entry goes when its count is 0. */
  private readonly peerCircuits = new Map<string, number>();

  constructor(private readonly options: ExitEngineOptions) {
    super();
    this.limits = { ...DEFAULT_SESSION_LIMITS, ...options.limits };
    this.clock = options.clock ?? systemClock;
  }

  addLink(link: Link, origin?: LinkOrigin): void {
    const state = new IncomingLink(link, this, origin?.peerId);
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
      sessionsCutOff: this.sessionsCutOff,
    };
  }

  /**
   * Ends every circuit with a CLOSE cell saying the exit is shutting down, then every link (with its goodbye):
   * clients learn at once, and why, and look for another exit. What was sent still needs the connections to
   * live until it is read: a host waits for them (PeerConnector's `connectionsEnded`) before it exits.
   */
  close(): void {
    const error = new SessionError('closed', 'the exit is shutting down');
    for (const state of this.links) state.shutDown(error);
    this.links.clear();
  }

  /** @internal */
  createSession(link: Link, circuitId: number, exitKey: Uint8Array): ExitCircuit | SessionError {
    const { options, limits, clock } = this;
    if (!bytesEqual(exitKey, options.staticKey.publicKey)) {
      return new SessionError('wrong-exit', 'this circuit names another exit key');
    }
    if (this.sessions >= (options.maxSessions ?? DEFAULT_MAX_SESSIONS)) {
      return new SessionError('closed', 'exit is full');
    }
    const session = new SecureSession({
      role: 'exit',
      staticKey: options.staticKey,
      certificate: options.certificate,
      handshakeTimeoutMs: options.handshakeTimeoutMs,
      aead: options.aead,
      mux: { maxStreams: options.maxStreamsPerSession ?? DEFAULT_MAX_STREAMS },
      transport: {
        send: (payload) => link.send(encodeCell({ type: 'data', circuitId, payload })),
        // The link's bufferedAmount is cheap to ask: in Node the wrtc polyfill (exit-node/src/node-peer.ts)
        // answers from its own count, not from the native channel.
        canSend: () => linkHasRoom(link),
      },
    });
    this.sessions += 1;
    this.sessionsTotal += 1;
    const context: StreamContext = { sessionId: this.sessionsTotal };
    const guard = new SessionGuard(session, limits, clock);
    session.once('close', (error) => {
      this.sessions -= 1;
      if (error && CLIENT_FAULTS.has(error.code)) this.sessionsCutOff += 1;
      this.emit('session-closed', error);
    });
    session.mux.on('stream', (stream, request) => {
      this.streamsTotal += 1;
      if (!guard.admitOpen(stream)) return;
      this.dial(request, context).then(
        (outside) => {
          if (stream.closed) {
            outside.destroy();
            return;
          }
          stream.accept();
          const paced = guard.bytes ? new ThrottledStream(outside, guard.bytes, clock) : outside;
          resetWhenIdle(stream, paced, limits.streamIdleTimeoutMs, clock);
          void pipeBoth(stream, paced);
        },
        (error: unknown) => {
          const streamError =
            error instanceof StreamError ? error : new StreamError('unreachable', errorMessage(error));
          this.emit('stream-failed', streamError);
          stream.reject(streamError.code);
        },
      );
    });
    return { session, guard };
  }

  /** The dialer, bounded in time: a resolver that never answers must not hold a stream forever. */
  private dial(request: StreamRequest, context: StreamContext): Promise<ByteStream> {
    return withDeadline(this.options.dialer.dial(request, context), {
      ms: this.limits.dialTimeoutMs,
      onTimeout: () => new StreamError('timeout', 'the destination did not answer in time'),
      disposeLate: (outside) => outside.destroy(),
      clock: this.clock,
    });
  }

  /**
   * @internal A circuit may open on this link if neither the link nor its peer holds its share already; when it
   * may, it is counted against the peer until `releaseCircuit`.
   */
  admitCircuit(circuitsOnLink: number, peerId: string | undefined): SessionError | undefined {
    if (circuitsOnLink >= (this.options.maxCircuitsPerLink ?? DEFAULT_MAX_CIRCUITS_PER_LINK))
      return new SessionError('closed', 'too many circuits on this link');
    if (peerId === undefined) return undefined;
    const held = this.peerCircuits.get(peerId) ?? 0;
    if (held >= (this.options.maxCircuitsPerPeer ?? DEFAULT_MAX_CIRCUITS_PER_PEER))
      return new SessionError('closed', 'too many circuits from this peer');
    this.peerCircuits.set(peerId, held + 1);
    return undefined;
  }

  /** @internal */
  releaseCircuit(peerId: string | undefined): void {
    if (peerId === undefined) return;
    const held = (this.peerCircuits.get(peerId) ?? 1) - 1;
    if (held > 0) this.peerCircuits.set(peerId, held);
    else this.peerCircuits.delete(peerId);
  }
}

/**
 * One link into the exit (from a relay, or a direct client) and the circuits on it. A link that sends malformed
 * cells is a broken or hostile relay: it is closed.
 */
class IncomingLink {
  private readonly circuits = new Map<number, ExitCircuit>();

  constructor(
    readonly link: Link,
    private readonly engine: ExitEngine,
    private readonly peerId: string | undefined,
  ) {
    link.on('message', (bytes) => this.onMessage(bytes));
    link.on('drain', () => {
      for (const circuit of this.circuits.values()) circuit.session.drain();
    });
  }

  /** Each circuit closed with a CLOSE cell to its far end, then the link. */
  shutDown(error: SessionError): void {
    for (const circuit of [...this.circuits.values()]) circuit.session.close(error);
    this.link.close(error);
  }

  closeAll(error: SessionError): void {
    const circuits = [...this.circuits.values()];
    this.circuits.clear();
    for (const circuit of circuits) {
      this.engine.releaseCircuit(this.peerId);
      circuit.session.close(error);
    }
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
        const refused = this.engine.admitCircuit(this.circuits.size, this.peerId);
        if (refused) {
          this.sendClose(cell.circuitId, refused);
          return;
        }
        const circuit = this.engine.createSession(this.link, cell.circuitId, cell.exitKey);
        if (circuit instanceof SessionError) {
          this.engine.releaseCircuit(this.peerId);
          this.sendClose(cell.circuitId, circuit);
          return;
        }
        this.circuits.set(cell.circuitId, circuit);
        circuit.session.once('close', (error) => {
          // Absent already when the far side closed it: then there is no one to tell.
          if (this.circuits.get(cell.circuitId) !== circuit) return;
          this.circuits.delete(cell.circuitId);
          this.engine.releaseCircuit(this.peerId);
          this.sendClose(cell.circuitId, error ?? new SessionError('closed'));
        });
        return;
      }
      case 'data':
        // Data for a circuit we already closed may still be in flight: drop it.
        if (existing?.guard.admitMessage()) existing.session.receive(cell.payload);
        return;
      case 'close':
        if (existing) {
          this.circuits.delete(cell.circuitId);
          this.engine.releaseCircuit(this.peerId);
          existing.session.close(new SessionError(cell.code, `the client side closed: ${cell.code}`));
        }
        return;
    }
  }

  private sendClose(circuitId: number, error: SessionError): void {
    if (!this.link.closed) this.link.send(encodeCell({ type: 'close', circuitId, code: error.code }));
  }
}
