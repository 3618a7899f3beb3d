import { systemClock, type Clock } from '../clock.js';
import { Emitter } from '../emitter.js';
import { StreamError, UnderpassError, toUnderpassError } from '../errors.js';
import { fromBase64Url } from '../bytes.js';
import type { ByteStream } from '../streams/byte-stream.js';
import type { ExitService } from '../signaling/messages.js';
import type { PeerFactory } from '../links/peer-link.js';
import type { StreamRequest } from '../tunnel/mux-frames.js';
import type { EarlyOpen } from '../tunnel/mux.js';
import { PeerConnector, type SignalingChannel } from '../links/peer-connector.js';
import { TunnelClient, type TunnelStats } from './client.js';
import { withDeadline } from '../deadline.js';
import { RefusalLog, refusalReasonOf, type RefusalSummary } from './refusal-log.js';
import { RefusedDestinations } from './refused-destinations.js';
import { RoundTripMeter } from './round-trip.js';
import { PathService, type PathServiceState } from './path-service.js';
import type { Link } from '../links/link.js';

/** How often the round trip of the current path is measured (one PING, 8 bytes, through every hop). */
export const DEFAULT_RTT_INTERVAL_MS = 5_000;
/** A PING not answered within this is a failed measurement (on a new path: the path is not used). */
export const DEFAULT_RTT_TIMEOUT_MS = 5_000;

/** How long a rebuild waits for a reconnecting signaling client before that attempt counts as failed. */
export const DEFAULT_SIGNALING_WAIT_MS = 10_000;

export type PathMode = 'two-hop' | 'direct';

export interface PathInfo {
  mode: PathMode;
  linkId: string;
  hop: { peerId: string; role: 'relay' | 'exit' };
  exit: { peerId: string; exitKey: string };
}

/** What ProtectEngine needs of the signaling client (SignalingClient provides it). */
export interface ProtectSignaling extends SignalingChannel {
  connect(): Promise<string>;
  requestPath(request: {
    mode: PathMode;
    exitKey?: string;
    needs?: ExitService;
  }): Promise<Omit<PathInfo, 'mode'> & { exit: { pings?: boolean | undefined } }>;
  /** False once the socket to the broker is gone; a client cannot reconnect, so a new one is made. */
  readonly connected?: boolean;
  /**
   * (A client that reconnects by itself, ReconnectingSignaling) resolves once connected again. Such a client is
   * kept for the engine's whole run: a lost broker only delays the next path, it never touches the current one.
   */
  whenConnected?(): Promise<string>;
  close?(): void;
}

export interface ProtectStats extends TunnelStats {
  /** Streams refused because no path was up: what the kill switch stopped from going out another way. */
  blocked: number;
  /** Of those, the ones refused while a lost path was being rebuilt. */
  blockedWhileReconnecting: number;
  /**
   * The current path's round trip (client → hops → exit → back): the latest PING/PONG, or for an exit that
   * predates PING, the encrypted handshake's.
   */
  rttMs?: number;
  /** Requests refused since Protect went on: by the exit (policy, DNS, …), by time, or for want of a path. */
  refusals: RefusalSummary;
}

export type ProtectState =
  | { status: 'off' }
  | { status: 'connecting' }
  | { status: 'protected'; path: PathInfo }
  /** `renewing`: the user asked for a new path (renew()); the old one is let go once the new one is up. */
  | { status: 'reconnecting'; reason: string; attempt: number; renewing?: true }
  | { status: 'error'; code: string; reason: string };

export interface ProtectEngineOptions {
  /**
   * Makes the signaling client, closed on stop(). A ReconnectingSignaling is made once per run and reconnects
   * by itself; a plain SignalingClient cannot reconnect, so a fresh one is made after its socket dropped.
   * Either this or `signaling` is required.
   */
  createSignaling?: () => ProtectSignaling;
  /** One client for the engine's whole life (tests); once its socket drops, rebuilds fail until stop(). */
  signaling?: ProtectSignaling;
  createPeer: PeerFactory;
  mode?: PathMode;
  /** Pin an exit by key; otherwise the broker picks the least-loaded one. */
  exitKey?: string;
  /** Only an exit that offers this (a downloads path needs `torrent`; its certificate must say so too). */
  needs?: ExitService;
  /**
   * The network's directory keys (Ed25519 public keys): the exit the broker names is used only with a valid
   * certificate from one of them (`untrusted-exit` otherwise). Empty: no exit is trusted.
   */
  directoryKeys: readonly Uint8Array[];
  connectTimeoutMs?: number;
  /** Lanes per WebRTC link (PeerConnectorOptions.lanes): asked for on links this end makes, agreed to on others. */
  lanes?: number;
  /** How long the encrypted handshake with the exit may take on a new path. */
  handshakeTimeoutMs?: number;
  /** Tries at the first path before Protect reports an error (WebRTC setup can fail once and work next). */
  initialAttempts?: number;
  /** Delay before rebuilding a lost path: attempt n waits min(base·2ⁿ, max). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /**
   * How long a rebuild waits for a reconnecting signaling client to be back before that attempt fails (and
   * the rebuild backoff goes on). Default 10 s.
   */
  signalingWaitMs?: number;
  /** The path's round trip and the rebuild backoff read it; injected for tests. */
  clock?: Clock;
  /** How often the current path's round trip is measured, and how long a PING may go unanswered. */
  rttIntervalMs?: number;
  rttTimeoutMs?: number;
  /** Wall-clock time (ms since 1970) for when a refusal happened; Date.now by default. */
  wallClock?: () => number;
}

export type ProtectEngineEvents = {
  state: [state: ProtectState];
  /** The wanted service's session on the current path (want, openService). */
  service: [state: PathServiceState];
};

/** The path that is up: what a service session over it needs. */
type LivePath = {
  tunnel: TunnelClient;
  link: Link;
  exitKey: Uint8Array;
  /** The service this path's broker request asked for (a preference, want), if any. */
  askedFor: ExitService | undefined;
  service: PathService | undefined;
  /** The next circuit id for a service session on this link (the path's own session has 1). */
  nextCircuitId: number;
};

/**
 * Protect: builds a path (signaling → WebRTC link to the first hop → encrypted session to the exit) and keeps
 * it up. While no path is up, `open` fails: nothing ever goes out another way.
 */
export class ProtectEngine extends Emitter<ProtectEngineEvents> {
  private current: ProtectState = { status: 'off' };
  private tunnel: TunnelClient | undefined;
  private connector: PeerConnector | undefined;
  private retryTimer: unknown;
  private generation = 0;
  private totals = { bytesUp: 0, bytesDown: 0 };
  private blocked = 0;
  private blockedWhileReconnecting = 0;
  private rttMs: number | undefined;
  private signaling: ProtectSignaling | undefined;
  /** Measures the current path's round trip, when its exit answers PING. */
  private meter: RoundTripMeter | undefined;
  private rttTimer: unknown;
  /** Exits (by key) that closed the session on a PING: they predate it, so they are not asked again. */
  private readonly noEcho = new Set<string>();
  /** The path being replaced by renew(), held until the new one is up so the broker counts it as ours. */
  private retiring: TunnelClient | undefined;
  private readonly refusals: RefusalLog;
  private readonly refusedDestinations: RefusedDestinations;
  /** A service another feature wants carried over this engine's paths (want). */
  private wanted: ExitService | undefined;
  /** The path that is up (with `tunnel`), and its service session. */
  private live: LivePath | undefined;

  private readonly clock: Clock;

  constructor(private readonly options: ProtectEngineOptions) {
    super();
    this.clock = options.clock ?? systemClock;
    this.refusals = new RefusalLog({ clock: { now: options.wallClock ?? (() => Date.now()) } });
    this.refusedDestinations = new RefusedDestinations({ clock: this.clock });
    if (!options.createSignaling && !options.signaling)
      throw new UnderpassError('bad-options', 'ProtectEngine needs createSignaling or signaling');
    this.signaling = options.signaling;
  }

  get state(): ProtectState {
    return this.current;
  }

  /** Resolves once the first path is up; rejects (and the state is `error`) if it cannot be built. */
  async start(): Promise<void> {
    if (this.current.status !== 'off' && this.current.status !== 'error') return;
    const generation = ++this.generation;
    this.setState({ status: 'connecting' });
    this.blockedWhileReconnecting = 0;
    this.refusals.clear();
    this.refusedDestinations.clear();
    this.rttMs = undefined;
    try {
      await this.buildFirstPath(generation);
    } catch (error) {
      if (generation !== this.generation) return;
      const failure = toUnderpassError(error);
      this.setState({ status: 'error', code: failure.code, reason: failure.message });
      throw failure;
    }
  }

  stop(): void {
    this.generation += 1;
    if (this.retryTimer !== undefined) this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.stopMeasuring();
    this.dropLive();
    this.tunnel?.close();
    this.tunnel = undefined;
    this.retiring?.close();
    this.retiring = undefined;
    // Only a client the engine made is the engine's to close; an injected one belongs to its owner.
    if (this.options.createSignaling) {
      this.signaling?.close?.();
      this.signaling = undefined;
      this.connector = undefined;
    }
    this.setState({ status: 'off' });
  }

  /** A stream through the path, handed over once the exit has reached the target. */
  open(request: StreamRequest): Promise<ByteStream> {
    const tunnel = this.openingTunnel(request);
    if (!tunnel) return Promise.reject(new StreamError('unreachable', 'no path is up'));
    return tunnel.open(request).catch((error: unknown) => {
      this.recordRefusal(request, error);
      throw error;
    });
  }

  /**
   * A stream through the path that may be written at once, before the exit has connected (Mux.openEarly): a
   * request then costs one path round trip, not two. Throws a StreamError while no path is up (the kill
   * switch); the exit's refusal closes the stream and rejects `opened`, and is logged as `open`'s are.
   */
  openEarly(request: StreamRequest): EarlyOpen<ByteStream> {
    const tunnel = this.openingTunnel(request);
    if (!tunnel) throw new StreamError('unreachable', 'no path is up');
    let early: EarlyOpen;
    try {
      early = tunnel.openEarly(request);
    } catch (error) {
      this.recordRefusal(request, error);
      throw error;
    }
    const { stream, opened } = early;
    // A stream its user gave up before the exit answered (a tab closed, a preconnect not needed) was not refused.
    opened.catch((error: unknown) => {
      if (!stream.cancelled) this.recordRefusal(request, error);
    });
    return early;
  }

  /** The path's tunnel if one is up; otherwise the kill switch's refusal is counted and logged. */
  private openingTunnel(request: StreamRequest): TunnelClient | undefined {
    const tunnel = this.tunnel;
    if (tunnel && this.current.status === 'protected') return tunnel;
    this.blocked += 1;
    if (this.current.status === 'reconnecting') this.blockedWhileReconnecting += 1;
    this.refusals.record(request, 'no-path');
    return undefined;
  }

  private recordRefusal(request: StreamRequest, error: unknown): void {
    const { code } = toUnderpassError(error);
    this.refusals.record(request, refusalReasonOf(code));
    this.refusedDestinations.note(request, code);
  }

  /**
   * Whether the exit refused this destination lately (RefusedDestinations): a browser connection to it should
   * wait for the exit's answer (`open`) rather than go out with early data (`openEarly`).
   */
  refusedLately(request: StreamRequest): boolean {
    return this.refusedDestinations.has(request);
  }

  /**
   * A fresh path (new link, new circuit, new session keys) in place of the current one, without letting go
   * of the kill switch: from now until the new path is up, `open` fails. The old path is held until then, so
   * the broker, which picks the least-loaded relay and exit, counts it against them and names others if it
   * has any. If the new path cannot be built, the old one is let go and the usual rebuild takes over.
   * False (nothing done) unless a path is up.
   */
  renew(): boolean {
    const old = this.tunnel;
    if (!old || this.current.status !== 'protected') return false;
    const generation = this.generation;
    this.tunnel = undefined;
    // The old path's service session stays with its link, and its streams with it, until the link goes.
    this.live = undefined;
    this.emitService();
    this.stopMeasuring();
    this.retiring = old;
    this.setState({ status: 'reconnecting', reason: 'finding a new path', attempt: 0, renewing: true });
    const letGo = () => {
      if (this.retiring !== old) return;
      this.retiring = undefined;
      old.close();
    };
    this.buildPath(generation).then(letGo, (error: unknown) => {
      letGo();
      if (generation !== this.generation) return;
      this.scheduleRebuild(generation, toUnderpassError(error).message, 1);
    });
    return true;
  }

  /**
   * Another feature's streams over this engine's paths (Firefox: Downloads' torrent streams on Protect's path,
   * where no new link of ours may connect while it is up). While wanted, every path this engine builds asks the
   * broker for an exit that offers `service` (a preference: with none, a path without it, so pages never wait
   * for it), and a session for it (PathService) is opened over the path's link. A path already up whose exit
   * turns out not to offer it, and that was not asked for it, is renewed once. `undefined`: no longer wanted; the
   * session is closed.
   */
  want(service: ExitService | undefined): void {
    if (this.wanted === service) return;
    this.wanted = service;
    const live = this.live;
    const previous = live?.service;
    if (live) live.service = undefined;
    previous?.close();
    if (live && service) this.openServiceSession(live, service);
    this.emitService();
  }

  /** The wanted service's session on the current path. */
  serviceState(): PathServiceState {
    return this.live?.service?.state ?? { status: 'none' };
  }

  /**
   * A stream of the wanted service over the current path (its own session, not the path's: it is not counted
   * in `stats` nor among the refusals). Fails at once while no path is up, or when the path's exit does not
   * offer the service (`torrents-off`).
   */
  openService(request: StreamRequest): Promise<ByteStream> {
    const { live, wanted } = this;
    if (!wanted || !live || this.tunnel !== live.tunnel || this.current.status !== 'protected')
      return Promise.reject(new StreamError('unreachable', 'no path is up'));
    // A session that ended (a handshake timeout, the exit's limit) is replaced; a lacking exit is not asked again.
    const current = live.service;
    const service =
      current && (!current.closed || current.state.status === 'lacking')
        ? current
        : this.openServiceSession(live, wanted);
    return service.open(request);
  }

  /** Opens the wanted service's session over the live path; renews a path whose exit lacks it (once). */
  private openServiceSession(live: LivePath, needs: ExitService): PathService {
    const previous = live.service;
    live.service = undefined;
    previous?.close();
    const service = new PathService({
      link: live.link,
      exitKey: live.exitKey,
      needs,
      directoryKeys: this.options.directoryKeys,
      circuitId: live.nextCircuitId,
      ...(this.options.handshakeTimeoutMs ? { handshakeTimeoutMs: this.options.handshakeTimeoutMs } : {}),
    });
    // Circuit ids are not reused on a link: a CLOSE and a new OPEN for one id could cross at the exit.
    live.nextCircuitId += 1;
    live.service = service;
    service.on('state', (state) => {
      if (this.live !== live || live.service !== service) return;
      this.emitService();
      // The broker named this exit without being asked for the service: ask it for a path that has it.
      if (state.status === 'lacking' && live.askedFor !== needs && this.wanted === needs) this.renew();
    });
    return service;
  }

  /** Lets the live path's service session go (the path itself is closed by its owner). */
  private dropLive(): void {
    const live = this.live;
    this.live = undefined;
    live?.service?.close();
    if (live) this.emitService();
  }

  private emitService(): void {
    this.emit('service', this.serviceState());
  }

  stats(): ProtectStats {
    const live = this.tunnel?.stats() ?? { bytesUp: 0, bytesDown: 0, streamsOpen: 0 };
    return {
      bytesUp: this.totals.bytesUp + live.bytesUp,
      bytesDown: this.totals.bytesDown + live.bytesDown,
      streamsOpen: live.streamsOpen,
      blocked: this.blocked,
      blockedWhileReconnecting: this.blockedWhileReconnecting,
      ...(this.rttMs !== undefined && this.tunnel ? { rttMs: this.rttMs } : {}),
      refusals: this.refusals.summary(),
    };
  }

  /** A connected signaling client and its connector: the old ones while they live, new ones after a drop. */
  private async ensureSignaling(): Promise<{ signaling: ProtectSignaling; connector: PeerConnector }> {
    const lasting = this.signaling?.whenConnected ? this.signaling : undefined;
    if (lasting?.whenConnected) {
      // It reconnects by itself (and re-announces); its connector, and the links it made, live on.
      await withDeadline(lasting.whenConnected(), {
        ms: this.options.signalingWaitMs ?? DEFAULT_SIGNALING_WAIT_MS,
        onTimeout: () =>
          new UnderpassError('signaling-unavailable', 'the signaling server is unreachable; still trying'),
        clock: this.clock,
      });
      this.connector ??= this.newConnector(lasting);
      return { signaling: lasting, connector: this.connector };
    }
    const reusable =
      this.signaling && this.connector && this.signaling.connected !== false ? this.signaling : undefined;
    if (reusable && this.connector) return { signaling: reusable, connector: this.connector };
    if (this.signaling && this.connector) {
      // It dropped. Without a factory there is nothing to rebuild with.
      if (!this.options.createSignaling)
        throw new UnderpassError('signaling-closed', 'lost the signaling server');
      this.signaling.close?.();
    }
    const signaling = this.options.createSignaling?.() ?? this.signaling;
    if (!signaling) throw new UnderpassError('bad-options', 'no signaling client');
    this.signaling = signaling;
    this.connector = undefined;
    try {
      await signaling.connect();
    } catch (error) {
      if (this.options.createSignaling) {
        signaling.close?.();
        this.signaling = undefined;
      }
      throw error;
    }
    const connector = this.newConnector(signaling);
    this.connector = connector;
    return { signaling, connector };
  }

  private newConnector(signaling: ProtectSignaling): PeerConnector {
    return new PeerConnector({
      signaling,
      createPeer: this.options.createPeer,
      connectTimeoutMs: this.options.connectTimeoutMs,
      lanes: this.options.lanes,
    });
  }

  private async buildFirstPath(generation: number): Promise<void> {
    const attempts = this.options.initialAttempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.buildPath(generation);
        return;
      } catch (error) {
        if (attempt >= attempts || generation !== this.generation) throw error;
      }
    }
  }

  private async buildPath(generation: number): Promise<void> {
    const mode = this.options.mode ?? 'two-hop';
    const { signaling, connector } = await this.ensureSignaling();
    if (generation !== this.generation) return;
    const { exitKey: pinned, needs } = this.options;
    // What another feature wants of the path (want) is asked for, not required: pages never wait for it.
    const askedFor = needs ?? this.wanted;
    const ask = (service: ExitService | undefined) =>
      signaling.requestPath({
        mode,
        ...(pinned ? { exitKey: pinned } : {}),
        ...(service ? { needs: service } : {}),
      });
    const path = await ask(askedFor).catch((error: unknown) => {
      if (needs || !askedFor || toUnderpassError(error).code !== 'no-exit-available') throw error;
      return ask(undefined);
    });
    const exitKey = fromBase64Url(path.exit.exitKey);
    if (!exitKey || exitKey.length !== 32)
      throw new UnderpassError('bad-exit-key', 'the broker sent a bad exit key');
    const link = await connector.connect(path.linkId, true);
    if (generation !== this.generation || link.closed) {
      link.close();
      if (generation === this.generation)
        throw new UnderpassError('link-closed', 'the first hop closed as the path was made');
      return;
    }
    const handshakeStarted = this.clock.now();
    const tunnel = new TunnelClient({
      link,
      exitKey,
      trust: { directoryKeys: this.options.directoryKeys, ...(needs === 'torrent' ? { needs } : {}) },
      ...(this.options.handshakeTimeoutMs ? { handshakeTimeoutMs: this.options.handshakeTimeoutMs } : {}),
    });
    let meter: RoundTripMeter | undefined;
    let rttMs: number;
    // The broker says this exit answers PING (it told the broker so): the path is used at once, shown with the
    // handshake's round trip until its first PING, sent beside the first streams, answers. Otherwise the
    // first PING is asked before any stream, since an exit from before PING ends the session on it.
    const pingsKnown = path.exit.pings === true;
    try {
      await tunnel.ready();
      rttMs = Math.max(0, this.clock.now() - handshakeStarted);
      if (!this.noEcho.has(path.exit.exitKey)) {
        meter = new RoundTripMeter({ echoer: tunnel, clock: this.clock });
        if (!pingsKnown) rttMs = await this.firstEcho(tunnel, meter, path.exit.exitKey);
      }
    } catch (error) {
      // A half-built path must not keep its link: the hop would go on counting us against its capacity.
      meter?.close();
      tunnel.close();
      link.close();
      // An exit that predates PING: the same path again, without asking it.
      if (error instanceof UnderpassError && error.code === 'no-echo' && generation === this.generation)
        return this.buildPath(generation);
      throw error;
    }
    if (generation !== this.generation) {
      meter?.close();
      tunnel.close();
      return;
    }
    this.rttMs = rttMs;
    this.tunnel = tunnel;
    const live: LivePath = { tunnel, link, exitKey, askedFor, service: undefined, nextCircuitId: 2 };
    this.live = live;
    if (meter) this.startMeasuring(tunnel, meter, generation, pingsKnown ? 0 : undefined);
    tunnel.once('close', (error) => {
      // A broker that said `pings` of an exit that then ended the session on its first PING: never again.
      if (pingsKnown && meter?.answered === 0 && tunnel.session.mux.error?.code === 'malformed-frame')
        this.noEcho.add(path.exit.exitKey);
      const stats = tunnel.stats();
      this.totals.bytesUp += stats.bytesUp;
      this.totals.bytesDown += stats.bytesDown;
      link.close();
      if (this.live === live) this.dropLive();
      if (this.tunnel !== tunnel || generation !== this.generation) return;
      this.tunnel = undefined;
      this.stopMeasuring();
      this.scheduleRebuild(generation, error?.message ?? 'the path closed', 0);
    });
    // Opened before the path is announced, so whoever hears `protected` finds the service session under way.
    if (this.wanted) this.openServiceSession(live, this.wanted);
    this.setState({
      status: 'protected',
      path: { mode, linkId: path.linkId, hop: path.hop, exit: path.exit },
    });
    if (this.wanted) this.emitService();
  }

  /**
   * The first PING on a new path, before any stream uses it: its answer is the path's first round trip. An
   * exit that predates PING ends the session with `malformed-frame` instead; it is remembered (`no-echo`), so
   * no user stream ever meets that, and old exits keep working at the cost of one extra handshake.
   */
  private async firstEcho(tunnel: TunnelClient, meter: RoundTripMeter, exitKey: string): Promise<number> {
    const onClose = () => meter.close();
    tunnel.once('close', onClose);
    try {
      return await meter.measure(this.options.rttTimeoutMs ?? DEFAULT_RTT_TIMEOUT_MS);
    } catch (error) {
      if (tunnel.closed && tunnel.session.mux.error?.code === 'malformed-frame') {
        this.noEcho.add(exitKey);
        throw new UnderpassError('no-echo', 'the exit does not answer PING');
      }
      throw error;
    } finally {
      tunnel.off('close', onClose);
    }
  }

  /**
   * Measures the current path's round trip every rttIntervalMs while it is up; the first PING goes `firstInMs`
   * from now (default: one interval on, when the first was asked already).
   */
  private startMeasuring(
    tunnel: TunnelClient,
    meter: RoundTripMeter,
    generation: number,
    firstInMs?: number,
  ): void {
    this.meter = meter;
    const interval = this.options.rttIntervalMs ?? DEFAULT_RTT_INTERVAL_MS;
    const tick = () => {
      this.rttTimer = undefined;
      if (this.meter !== meter || generation !== this.generation) return;
      meter.measure(this.options.rttTimeoutMs ?? DEFAULT_RTT_TIMEOUT_MS).then(
        (ms) => {
          if (this.meter !== meter || this.tunnel !== tunnel) return;
          this.rttMs = ms;
          this.rttTimer = this.clock.setTimeout(tick, interval);
        },
        // Unanswered in time: the last figure stands (the keepalive ends a dead link); try again later.
        () => {
          if (this.meter === meter) this.rttTimer = this.clock.setTimeout(tick, interval);
        },
      );
    };
    this.rttTimer = this.clock.setTimeout(tick, firstInMs ?? interval);
  }

  private stopMeasuring(): void {
    if (this.rttTimer !== undefined) this.clock.clearTimeout(this.rttTimer);
    this.rttTimer = undefined;
    this.meter?.close();
    this.meter = undefined;
  }

  private scheduleRebuild(generation: number, reason: string, attempt: number): void {
    this.setState({ status: 'reconnecting', reason, attempt });
    const base = this.options.retryBaseMs ?? 500;
    const delay = Math.min(base * 2 ** attempt, this.options.retryMaxMs ?? 10_000);
    this.retryTimer = this.clock.setTimeout(() => {
      if (generation !== this.generation) return;
      this.buildPath(generation).catch((error: unknown) => {
        if (generation !== this.generation) return;
        this.scheduleRebuild(generation, toUnderpassError(error).message, attempt + 1);
      });
    }, delay);
  }

  private setState(state: ProtectState): void {
    this.current = state;
    this.emit('state', state);
  }
}
