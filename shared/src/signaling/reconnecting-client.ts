/**
 * A role's lasting connection to the signaling broker: one SignalingClient per socket (the broker's peer ids
 * and link ids are per socket), and a new one after each loss, with exponential backoff and full jitter up to
 * a cap. Each new socket says the role's hello again (an exit proves its key again), repeats the last load
 * reported and claims the links this peer still holds (`link-resume`), so the broker sees the peer as it is now
 * and can again tell one member of a link that the other left. Nothing here closes links: WebRTC links that
 * are up do not need the broker, and a loss of the broker must not take them down.
 */
import { systemClock, type Clock } from '../clock.js';
import { Emitter } from '../emitter.js';
import { UnderpassError, toUnderpassError } from '../errors.js';
import { DEFAULT_RECONNECT_BACKOFF, fullJitterDelay, type BackoffOptions } from './backoff.js';
import { SignalingClient, type SignalingClientOptions } from './client.js';
import {
  MAX_RESUME_IDS_PER_CONNECTION,
  MAX_RESUME_IDS_PER_MESSAGE,
  type ExitService,
  type LinkMessage,
  type PathMessage,
  type PathRequestMessage,
} from './messages.js';

/** What a user or operator is shown of the connection to the broker. */
export type SignalingConnectionState =
  /** A socket is being opened and the role announced (`attempt` 1 is the first since the last loss). */
  | { status: 'connecting'; attempt: number }
  | { status: 'connected'; peerId: string }
  /** Waiting `nextInMs` before attempt `attempt`; `code`/`reason`: why the last socket ended. */
  | { status: 'reconnecting'; attempt: number; nextInMs: number; code: string; reason: string }
  /** Not trying: close() was called, the very first connection failed, or the server refused us for good. */
  | { status: 'stopped'; code?: string; reason?: string };

export type ReconnectingSignalingOptions = SignalingClientOptions & {
  /** Timers of the backoff and the stable-connection rule; injected for tests. */
  clock?: Clock;
  /** Uniform in [0, 1): the jitter. Injected for tests. */
  random?: () => number;
  backoff?: Partial<BackoffOptions>;
  /**
   * A connection that stayed up this long was a real one: the next loss starts the backoff afresh. A server
   * that welcomes and then drops us at once keeps growing the wait instead. Default 10 s.
   */
  stableMs?: number;
  /**
   * Keep trying when the very first connection fails. Off by default, so a wrong server address is reported
   * at once (Protect, Volunteer); an exit started before its server sets it.
   */
  retryFirstConnect?: boolean;
};

export type ReconnectingSignalingEvents = {
  link: [LinkMessage];
  signal: [linkId: string, data: unknown];
  'link-closed': [linkId: string];
  /** An error frame that answers no request, or a frame that failed validation (from the current socket). */
  error: [UnderpassError];
  state: [SignalingConnectionState];
};

export const DEFAULT_STABLE_CONNECTION_MS = 10_000;
/**
 * Links held at once (made or offered, not closed), across sockets; beyond this the oldest are forgotten (they
 * then get no link-closed and are not claimed again). The server takes as many claims per connection.
 */
const MAX_HELD_LINKS = MAX_RESUME_IDS_PER_CONNECTION;
/**
 * Codes after which trying again cannot help: this server does not speak our protocol; or another process
 * proved this exit's key and took its place, and reconnecting would only take it back, again and again.
 */
const PERMANENT_CODES = new Set<string>(['unsupported-version', 'replaced']);

/** The next welcome, shared by everyone waiting for it (one promise, however many callers wait). */
type Welcome = {
  promise: Promise<string>;
  resolve: (peerId: string) => void;
  reject: (error: UnderpassError) => void;
};

export class ReconnectingSignaling extends Emitter<ReconnectingSignalingEvents> {
  private client: SignalingClient | undefined;
  private current: SignalingConnectionState = { status: 'stopped' };
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly backoff: BackoffOptions;
  private readonly stableMs: number;
  private timer: unknown;
  private failures = 0;
  /** When the server went away: the first loss since the backoff last started afresh. */
  private outageSince = 0;
  private attempt = 0;
  private connectedAt: number | undefined;
  private everConnected = false;
  private closed = false;
  private lastLoad: number | undefined;
  private welcome: Welcome | undefined;
  /**
   * Links this peer holds, whichever socket made them: the owner calls linkClosed() when one ends (PeerConnector
   * does, for every link it set up), the broker says link-closed. Claimed again on every new socket.
   */
  private readonly heldLinks = new Set<string>();

  constructor(private readonly options: ReconnectingSignalingOptions) {
    super();
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.backoff = { ...DEFAULT_RECONNECT_BACKOFF, ...options.backoff };
    if (!(this.backoff.baseMs > 0) || !(this.backoff.maxMs >= this.backoff.baseMs))
      throw new UnderpassError('bad-options', 'backoff needs 0 < baseMs ≤ maxMs');
    this.stableMs = options.stableMs ?? DEFAULT_STABLE_CONNECTION_MS;
  }

  get state(): SignalingConnectionState {
    return this.current;
  }

  get connected(): boolean {
    return this.current.status === 'connected' && this.client?.connected === true;
  }

  /** The id of the current socket, while connected: it changes with every reconnect. */
  get peerId(): string | undefined {
    return this.current.status === 'connected' ? this.current.peerId : undefined;
  }

  /**
   * Resolves with the peer id once connected: at once when connected, else when the connection under way (or
   * one started now, if none is) is welcomed. Rejects after close(), on a refusal that retrying cannot fix,
   * and when the first connection fails without `retryFirstConnect`.
   */
  connect(): Promise<string> {
    if (this.closed) return Promise.reject(new UnderpassError('closed', 'the signaling client is closed'));
    if (this.connected && this.current.status === 'connected') return Promise.resolve(this.current.peerId);
    if (!this.welcome) {
      let resolve!: Welcome['resolve'];
      let reject!: Welcome['reject'];
      const promise = new Promise<string>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      this.welcome = { promise, resolve, reject };
    }
    const { promise } = this.welcome;
    if (this.current.status === 'stopped') {
      this.attempt = 0;
      this.open();
    }
    return promise;
  }

  /** Same as connect(): ProtectEngine waits on it before it asks for a new path. */
  whenConnected(): Promise<string> {
    return this.connect();
  }

  async requestPath(request: {
    mode: PathRequestMessage['mode'];
    exitKey?: string;
    needs?: ExitService;
  }): Promise<PathMessage> {
    const client = this.live();
    const path = await client.requestPath(request);
    if (this.client === client) this.know(path.linkId);
    return path;
  }

  async connectExit(exitKey: string): Promise<LinkMessage> {
    const client = this.live();
    const link = await client.connectExit(exitKey);
    if (this.client === client) this.know(link.linkId);
    return link;
  }

  /**
   * Signal data for a link this peer holds; false (dropped) for any other, or while disconnected. On a link
   * made through an earlier socket it reaches the other member once the broker paired both claims (before
   * that the broker answers `unknown-link`, an error event and nothing more).
   */
  signal(linkId: string, data: unknown): boolean {
    if (!this.heldLinks.has(linkId)) return false;
    return this.connected ? (this.client?.signal(linkId, data) ?? false) : false;
  }

  /**
   * The owner is done with a link: it is no longer claimed after a reconnect, and the broker is told now if
   * connected (it then tells the other member, or drops this peer's pending claim of it).
   */
  linkClosed(linkId: string): boolean {
    if (!this.heldLinks.delete(linkId)) return false;
    return this.connected ? (this.client?.linkClosed(linkId) ?? false) : false;
  }

  /** Ids of the links held now (claimed again after each reconnect). */
  get heldLinkIds(): readonly string[] {
    return [...this.heldLinks];
  }

  /** Reports the load now, and again on every new socket until it changes. */
  reportLoad(load: number): boolean {
    if (!Number.isSafeInteger(load) || load < 0)
      throw new UnderpassError('malformed', 'load must be a non-negative integer');
    this.lastLoad = load;
    return this.connected ? (this.client?.reportLoad(load) ?? false) : false;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const client = this.client;
    this.client = undefined;
    client?.close();
    this.heldLinks.clear();
    this.settle(new UnderpassError('closed', 'the signaling client is closed'));
    this.setState({ status: 'stopped' });
  }

  private live(): SignalingClient {
    const client = this.client;
    if (!client || !this.connected) throw new UnderpassError('not-connected', this.describeOutage());
    return client;
  }

  private describeOutage(): string {
    const state = this.current;
    if (state.status === 'reconnecting')
      return `not connected to the signaling server (reconnecting: ${state.reason})`;
    return 'not connected to the signaling server';
  }

  /** Opens one socket and announces the role on it. */
  private open(): void {
    this.attempt += 1;
    const client = new SignalingClient(this.options);
    this.client = client;
    this.setState({ status: 'connecting', attempt: this.attempt });
    let lost = false;
    const onWelcome = (peerId: string) => {
      if (this.client !== client || this.connectedAt !== undefined) return;
      this.everConnected = true;
      this.connectedAt = this.clock.now();
      this.attempt = 0;
      this.setState({ status: 'connected', peerId });
      // The announce beyond hello: a relay's or exit's load, as the broker knew it before the loss.
      if (this.lastLoad !== undefined) client.reportLoad(this.lastLoad);
      this.resume(client);
      this.settle(undefined, peerId);
    };
    const onLost = (error: UnderpassError | undefined) => {
      if (lost || this.client !== client) return;
      lost = true;
      // Welcomed, then closed in the same turn (a server restarting just then): it was connected, briefly.
      if (client.peerId !== undefined) onWelcome(client.peerId);
      this.lost(
        error ?? new UnderpassError('signaling-closed', `signaling connection to ${this.options.url} closed`),
      );
    };
    client.on('link', (msg) => {
      if (this.client !== client) return;
      this.know(msg.linkId);
      this.emit('link', msg);
    });
    client.on('signal', (linkId, data) => {
      if (this.client === client) this.emit('signal', linkId, data);
    });
    client.on('link-closed', (linkId) => {
      if (this.client !== client) return;
      this.heldLinks.delete(linkId);
      this.emit('link-closed', linkId);
    });
    client.on('error', (error) => {
      if (this.client === client) this.emit('error', error);
    });
    client.on('close', (error) => onLost(error));
    client.connect().then(
      (peerId) => {
        if (client.connected) onWelcome(peerId);
      },
      (error: unknown) => onLost(toUnderpassError(error, 'signaling-closed')),
    );
  }

  private lost(error: UnderpassError): void {
    if (this.closed) return;
    const wasConnected = this.connectedAt !== undefined;
    if (wasConnected && this.clock.now() - this.connectedAt! >= this.stableMs) this.failures = 0;
    this.connectedAt = undefined;
    this.client = undefined;
    const permanent = PERMANENT_CODES.has(error.code);
    if (permanent || (!this.everConnected && !this.options.retryFirstConnect)) {
      this.attempt = 0;
      this.setState({ status: 'stopped', code: error.code, reason: error.message });
      this.settle(error);
      return;
    }
    const now = this.clock.now();
    if (this.failures === 0) this.outageSince = now;
    const nextInMs = fullJitterDelay(this.failures, this.backoff, this.random, now - this.outageSince);
    this.failures += 1;
    this.setState({
      status: 'reconnecting',
      attempt: this.attempt + 1,
      nextInMs,
      code: error.code,
      reason: error.message,
    });
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      if (!this.closed) this.open();
    }, nextInMs);
  }

  /**
   * Claims the links held from earlier sockets, so that this broker can again tell one member when the other
   * leaves. Sent right after the load: before any request of the new socket, whose links it need not claim.
   */
  private resume(client: SignalingClient): void {
    const ids = [...this.heldLinks];
    for (let i = 0; i < ids.length; i += MAX_RESUME_IDS_PER_MESSAGE)
      client.resumeLinks(ids.slice(i, i + MAX_RESUME_IDS_PER_MESSAGE));
  }

  private know(linkId: string): void {
    this.heldLinks.delete(linkId);
    this.heldLinks.add(linkId);
    if (this.heldLinks.size > MAX_HELD_LINKS) {
      const oldest = this.heldLinks.values().next();
      if (!oldest.done) this.heldLinks.delete(oldest.value);
    }
  }

  private settle(error: UnderpassError | undefined, peerId?: string): void {
    const welcome = this.welcome;
    this.welcome = undefined;
    if (!welcome) return;
    if (error) welcome.reject(error);
    else welcome.resolve(peerId!);
  }

  private setState(state: SignalingConnectionState): void {
    this.current = state;
    this.emit('state', state);
  }
}
