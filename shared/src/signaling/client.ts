/**
 * A peer's connection to the signaling broker. Runs in the browser and in Node alike: the WebSocket class is
 * injected (the browser's global, or the `ws` package's), and nothing here imports a Node module.
 */
import { withDeadline } from '../deadline.js';
import { Emitter } from '../emitter.js';
import { UnderpassError, errorMessage } from '../errors.js';
import { proveExitKey, type ExitKeyChallenge } from './exit-proof.js';
import { randomId } from './ids.js';
import {
  MAX_RESUME_IDS_PER_MESSAGE,
  MAX_SIGNAL_DATA_BYTES,
  SIGNALING_PROTOCOL_VERSION,
  encodeMessage,
  idSchema,
  parseServerMessage,
  type ExitService,
  type HelloMessage,
  type LinkMessage,
  type PathMessage,
  type PathRequestMessage,
  type PeerMessage,
  type ServerMessage,
} from './messages.js';

export { proveExitKey, type ExitKeyChallenge } from './exit-proof.js';

/** The part of a WebSocket this client uses; both the DOM WebSocket and `ws`'s WebSocket satisfy it. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: 'error', listener: (event: unknown) => void): void;
}
export type WebSocketConstructorLike = new (url: string) => WebSocketLike;

export type SignalingClientOptions = {
  url: string;
  WebSocket: WebSocketConstructorLike;
  hello: Omit<HelloMessage, 'type' | 'v'>;
  /** How long connect(), requestPath() and connectExit() wait for the server's answer. Default 10 s. */
  requestTimeoutMs?: number;
  /**
   * (Exits) the X25519 secret key whose public half is `hello.exitKey`. It never leaves this object: the
   * server asks for proof of possession (`challenge`), and the client answers with a MAC (`prove`).
   */
  exitSecretKey?: Uint8Array;
  /** (Exits) instead of `exitSecretKey`, computes the proof elsewhere (e.g. where the key is kept). */
  proveExitKey?: (challenge: ExitKeyChallenge) => string | Promise<string>;
};

export type SignalingClientEvents = {
  /** A link the server asks this peer to open as the answering side (a relay or exit being the hop). */
  link: [LinkMessage];
  signal: [linkId: string, data: unknown];
  'link-closed': [linkId: string];
  /** An error frame that answers no pending request, or a frame from the server that failed validation. */
  error: [UnderpassError];
  /** The socket closed; the error says why when it was not close() that closed it. */
  close: [UnderpassError | undefined];
};

const OPEN = 1;
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Never send heartbeats more often than this, whatever the server asks for. */
const MIN_HEARTBEAT_MS = 100;

type Pending = {
  kind: 'path' | 'link';
  resolve: (msg: PathMessage | LinkMessage) => void;
  reject: (error: UnderpassError) => void;
};

export class SignalingClient extends Emitter<SignalingClientEvents> {
  private socket: WebSocketLike | undefined;
  private welcomed: { resolve: (peerId: string) => void; reject: (e: UnderpassError) => void } | undefined;
  private readonly pending = new Map<string, Pending>();
  private lastServerError: UnderpassError | undefined;
  private closedByUs = false;
  private ended = false;
  private id: string | undefined;
  private readonly timeoutMs: number;
  private heartbeat: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly options: SignalingClientOptions) {
    super();
    this.timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  /** This peer's id, once welcomed. */
  get peerId(): string | undefined {
    return this.id;
  }

  get connected(): boolean {
    return this.id !== undefined && !this.ended && this.socket?.readyState === OPEN;
  }

  /** Opens the socket, says hello and resolves with the peerId the server assigned. Call once. */
  connect(): Promise<string> {
    if (this.socket) return Promise.reject(new UnderpassError('not-allowed', 'connect() may be called once'));
    let socket: WebSocketLike;
    try {
      socket = new this.options.WebSocket(this.options.url);
    } catch (error) {
      const message = `cannot open ${this.options.url}: ${errorMessage(error)}`;
      return Promise.reject(new UnderpassError('connect-failed', message));
    }
    const welcomed = new Promise<string>((resolve, reject) => {
      this.welcomed = { resolve, reject };
    });
    this.socket = socket;
    socket.addEventListener('open', () => {
      this.write({ type: 'hello', v: SIGNALING_PROTOCOL_VERSION, ...this.options.hello });
    });
    socket.addEventListener('message', (event) => this.onFrame(event.data));
    socket.addEventListener('close', (event) => this.onClose(event.code, event.reason));
    // Always followed by 'close', which does the cleanup.
    socket.addEventListener('error', () => {});
    return withDeadline(welcomed, {
      ms: this.timeoutMs,
      onTimeout: () => {
        // No welcome in time ends the whole session, not just this promise.
        const error = new UnderpassError(
          'timeout',
          `the signaling server at ${this.options.url} did not welcome us in time`,
        );
        this.fail(error);
        return error;
      },
    });
  }

  /**
   * Asks the broker for a path; the client is the WebRTC initiator on the returned link. With `needs`, the
   * exit must offer that service: the broker picks only such exits, and an answer whose exit does not say so
   * (a server that predates `needs` ignores it) is refused here, its link closed, as `no-exit-available`.
   */
  async requestPath(request: {
    mode: PathRequestMessage['mode'];
    exitKey?: string;
    needs?: ExitService;
  }): Promise<PathMessage> {
    const requestId = randomId();
    const msg: PathRequestMessage = { type: 'path-request', requestId, mode: request.mode };
    if (request.exitKey !== undefined) msg.exitKey = request.exitKey;
    if (request.needs !== undefined) msg.needs = request.needs;
    const path = (await this.request('path', requestId, msg)) as PathMessage;
    if (request.needs === 'torrent' && path.exit.torrents !== true) {
      this.linkClosed(path.linkId);
      throw new UnderpassError(
        'no-exit-available',
        'the server offered an exit that does not serve torrents',
      );
    }
    return path;
  }

  /** (Relays) asks the broker for a link to an exit; the relay is the WebRTC initiator on it. */
  connectExit(exitKey: string): Promise<LinkMessage> {
    const requestId = randomId();
    return this.request('link', requestId, {
      type: 'connect-exit',
      requestId,
      exitKey,
    }) as Promise<LinkMessage>;
  }

  /**
   * Sends simple-peer signal data to the other member of a link. Returns false when not connected (the
   * data is then dropped: a link whose signaling is gone has to be rebuilt anyway).
   */
  signal(linkId: string, data: unknown): boolean {
    if (typeof data !== 'object' || data === null || Array.isArray(data))
      throw new UnderpassError('malformed', 'signal data must be a JSON object');
    const size = new TextEncoder().encode(JSON.stringify(data)).length;
    if (size > MAX_SIGNAL_DATA_BYTES)
      throw new UnderpassError('too-large', `signal data of ${size} bytes exceeds ${MAX_SIGNAL_DATA_BYTES}`);
    return this.write({ type: 'signal', linkId, data: data as Record<string, unknown> });
  }

  linkClosed(linkId: string): boolean {
    return this.write({ type: 'link-closed', linkId });
  }

  /**
   * Claims links made through an earlier socket, so this broker knows them again (PROTOCOL.md §1,
   * Reconnecting). At most MAX_RESUME_IDS_PER_MESSAGE ids, each a valid link id.
   */
  resumeLinks(linkIds: readonly string[]): boolean {
    if (linkIds.length === 0 || linkIds.length > MAX_RESUME_IDS_PER_MESSAGE)
      throw new UnderpassError('malformed', `claim 1 to ${MAX_RESUME_IDS_PER_MESSAGE} links per message`);
    if (!linkIds.every((id) => idSchema.safeParse(id).success))
      throw new UnderpassError('malformed', 'not a link id');
    return this.write({ type: 'link-resume', linkIds: [...linkIds] });
  }

  /** (Relays and exits) reports how many clients this peer serves now; doubles as a heartbeat. */
  reportLoad(load: number): boolean {
    if (!Number.isSafeInteger(load) || load < 0)
      throw new UnderpassError('malformed', 'load must be a non-negative integer');
    return this.write({ type: 'load', load });
  }

  close(): void {
    if (this.ended) return;
    this.closedByUs = true;
    this.socket?.close(1000, 'bye');
    this.end(undefined);
  }

  private request(
    kind: Pending['kind'],
    requestId: string,
    msg: PeerMessage,
  ): Promise<PathMessage | LinkMessage> {
    if (!this.connected)
      return Promise.reject(new UnderpassError('not-connected', 'not connected to the signaling server'));
    const answer = new Promise<PathMessage | LinkMessage>((resolve, reject) => {
      this.pending.set(requestId, { kind, resolve, reject });
      this.write(msg);
    });
    return withDeadline(answer, {
      ms: this.timeoutMs,
      onTimeout: () => {
        this.pending.delete(requestId);
        return new UnderpassError('timeout', `no answer to ${msg.type} in ${this.timeoutMs} ms`);
      },
    });
  }

  private write(msg: PeerMessage): boolean {
    if (this.ended || this.socket?.readyState !== OPEN) return false;
    this.socket.send(encodeMessage(msg));
    return true;
  }

  private onFrame(data: unknown): void {
    // Frames still in flight after close() are not news to anyone.
    if (this.ended) return;
    if (typeof data !== 'string') {
      this.emit('error', new UnderpassError('malformed', 'the signaling server sent a binary frame'));
      return;
    }
    const decoded = parseServerMessage(data);
    if (!decoded.ok) {
      this.emit(
        'error',
        new UnderpassError(decoded.code, `bad frame from the signaling server: ${decoded.message}`),
      );
      return;
    }
    this.dispatch(decoded.msg);
  }

  private dispatch(msg: ServerMessage): void {
    switch (msg.type) {
      case 'welcome': {
        const welcomed = this.welcomed;
        if (!welcomed || this.id !== undefined) return;
        this.id = msg.peerId;
        this.welcomed = undefined;
        if (msg.heartbeatMs !== undefined) this.startHeartbeat(msg.heartbeatMs);
        welcomed.resolve(msg.peerId);
        return;
      }
      case 'challenge':
        if (this.welcomed) this.answerChallenge({ serverKey: msg.serverKey, nonce: msg.nonce });
        return;
      case 'path':
        this.settle(msg.requestId, 'path', msg);
        return;
      case 'link':
        if (msg.requestId !== undefined && this.settle(msg.requestId, 'link', msg)) return;
        this.emit('link', msg);
        return;
      case 'signal':
        this.emit('signal', msg.linkId, msg.data);
        return;
      case 'link-closed':
        this.emit('link-closed', msg.linkId);
        return;
      case 'error': {
        const error = new UnderpassError(msg.code, msg.message);
        this.lastServerError = error;
        if (this.welcomed) {
          // Before welcome every error is fatal to the handshake; the server closes the socket next.
          this.fail(error);
          return;
        }
        const pending = msg.requestId !== undefined ? this.pending.get(msg.requestId) : undefined;
        if (pending && msg.requestId !== undefined) {
          this.pending.delete(msg.requestId);
          pending.reject(error);
          return;
        }
        this.emit('error', error);
        return;
      }
    }
  }

  private answerChallenge(challenge: ExitKeyChallenge): void {
    const { exitSecretKey, proveExitKey: prove } = this.options;
    if (!prove && !exitSecretKey) {
      this.fail(
        new UnderpassError(
          'not-allowed',
          'the signaling server asks exits to prove their key; pass exitSecretKey or proveExitKey',
        ),
      );
      return;
    }
    Promise.resolve()
      .then(() => (prove ? prove(challenge) : proveExitKey(exitSecretKey!, challenge)))
      .then(
        (proof) => this.write({ type: 'prove', proof }),
        (error: unknown) =>
          this.fail(new UnderpassError('not-allowed', `cannot prove the exit key: ${errorMessage(error)}`)),
      );
  }

  /** The server drops quiet connections; a heartbeat at the interval it asks for keeps this one. */
  private startHeartbeat(intervalMs: number): void {
    const every = Math.max(MIN_HEARTBEAT_MS, intervalMs);
    this.heartbeat = setInterval(() => this.write({ type: 'heartbeat' }), every);
    const timer = this.heartbeat as { unref?: () => void };
    timer.unref?.();
  }

  private settle(requestId: string, kind: Pending['kind'], msg: PathMessage | LinkMessage): boolean {
    const pending = this.pending.get(requestId);
    if (!pending || pending.kind !== kind) return false;
    this.pending.delete(requestId);
    pending.resolve(msg);
    return true;
  }

  private onClose(code: number, reason: string): void {
    if (this.ended) return;
    if (this.closedByUs) return this.end(undefined);
    this.end(
      this.lastServerError ??
        new UnderpassError(
          'signaling-closed',
          `signaling connection to ${this.options.url} closed (${code}${reason ? ` ${reason}` : ''})`,
        ),
    );
  }

  /** Ends the session because of `error`, closing the socket if it is still up. */
  private fail(error: UnderpassError): void {
    if (this.ended) return;
    this.socket?.close(1000, 'bye');
    this.end(error);
  }

  private end(error: UnderpassError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.heartbeat);
    const reason = error ?? new UnderpassError('closed', 'signaling client closed');
    this.welcomed?.reject(reason);
    this.welcomed = undefined;
    for (const pending of this.pending.values()) pending.reject(reason);
    this.pending.clear();
    this.emit('close', error);
  }
}
