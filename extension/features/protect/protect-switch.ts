import { systemClock, type Clock } from '@underpass/shared/clock';
import type { CompanionFailure, CompanionHandle, CompanionReady } from '../../lib/companion-port';
import { CompanionRestarts, type CompanionRestartsOptions } from '../../lib/companion-restarts';
import type { EngineChannel } from '../../lib/engine-channel';
import { SwitchBase, type FeatureSwitch, type ResumeInput } from '../../lib/feature-switch';
import type {
  EngineEvent,
  OffscreenCommand,
  SwitchAction,
  SwitchName,
  SwitchState,
} from '../../lib/messages';
import { explainPairedFailure, PairedCompanion } from '../../lib/paired-companion';
import type { Pairing } from '@underpass/shared/data-port';
import type { ProxyControl } from '../../lib/proxy-control';
import type { BlockRuleInput } from '../../lib/proxy-rules';
import type { SerialQueue } from '../../lib/serial-queue';
import { type Settings } from '../../lib/settings';
import { settingsChangeFor } from './protect-settings';
import { MAX_REASON_LENGTH, switchError } from '../../lib/switch-error';
import {
  type CompanionLink,
  EMPTY_PROTECT_INFO,
  type ProtectEngineState,
  type ProtectInfo,
  type ProtectPath,
  type ProtectStats,
  ZERO_PROTECT_STATS,
} from './protect-messages';

/**
 * Protect, as the background runs it: off → connecting → on (→ reconnecting → on), or error(reason).
 *
 * Turning it on starts two things at once, since each takes about as long: the companion (native messaging,
 * or the ports and secret of a hand-started companion the user paired) and the path, in the engines' host.
 * Once the companion is up its data socket joins the path; once both are up the proxy points at the
 * companion. From then on the proxy stays set until the user turns Protect off, even if the path or the
 * companion breaks: pages fail rather than leak (the kill switch).
 *
 * A companion started through native messaging that dies (its port disconnects, or its data socket closes) is
 * started again with backoff (CompanionRestarts: a bounded number of starts a minute) while the path stays up.
 * Meanwhile the proxy keeps pointing at the dead companion's SOCKS port, which refuses every connection:
 * Chromium fails the request (a single fixed proxy has no direct fallback). The new companion listens on new
 * ports, so the proxy is pointed at it (one `set`, never a clear) before its data socket joins, and Protect is
 * back on by itself once it has joined. A companion that cannot be started (uninstalled, or dying in a loop)
 * ends in an error in words, with the proxy still set until the user turns Protect off. A companion the user
 * started by hand (paired) cannot be started again from here: losing it is an error that says what to do.
 */

export type ProtectStore = {
  loadSettings(): Promise<Settings>;
  saveSwitchState(name: SwitchName, state: SwitchState): Promise<void>;
  saveProtectInfo(info: ProtectInfo): Promise<void>;
};

export type ProtectSwitchOptions = {
  channel: EngineChannel;
  proxy: ProxyControl;
  /** Starts the companion through native messaging; used when no hand-started companion is paired. */
  createCompanion: () => CompanionHandle;
  store: ProtectStore;
  queue: SerialQueue;
  /** Timers for the companion's restarts; the system clock by default. */
  clock?: Clock;
  /** The restart policy's limits (defaults in companion-restarts.ts). */
  restarts?: Omit<CompanionRestartsOptions, 'clock'>;
};

type ProxiedTo = { socksPort: number; dataPort: number } | 'blocked';

/** A companion being started again: which attempt, and the timer that starts it. */
type Restart = { attempt: number; left: number; delayMs: number; timer?: unknown };

/** One run of Protect, from on to off. */
type ProtectSession = {
  /** The current companion (after a restart, the new one). */
  companion: CompanionHandle;
  /** Set when the companion was started by hand and paired: its failures are explained differently. */
  pairing?: Pairing;
  settings: Settings;
  /** The current companion's ports and secret, once it said ready; cleared when it is lost. */
  ready?: CompanionReady;
  /** The engines' host joined the current companion's data socket to the path. */
  joined: boolean;
  restart?: Restart;
  restarts: CompanionRestarts;
  /**
   * Set once pages are kept from going direct: the ports the proxy points at, or `blocked` (a Protect that came
   * back after a restart, before its companion is up: pages fail). It stays set (the kill switch) until Protect
   * is turned off.
   */
  proxied?: ProxiedTo;
  /** The engine is rebuilding a lost path. */
  pathLost: boolean;
  /** The engine is building the new path the user asked for (the old one is no longer used). */
  renewing: boolean;
  /** The engine was started again with settings the user just changed. */
  applyingSettings: boolean;
  path?: ProtectPath;
  stats: ProtectStats;
};

const FINDING_A_PATH: SwitchState = { status: 'connecting', detail: 'Finding a path' };
/** Failures a new attempt cannot cure: the user has to act (install, reinstall). */
const PERMANENT_COMPANION_FAILURES: ReadonlySet<string> = new Set([
  'companion-missing',
  'companion-forbidden',
]);

export class ProtectSwitch extends SwitchBase implements FeatureSwitch {
  readonly name = 'protect';
  private session: ProtectSession | undefined;

  private readonly clock: Clock;

  constructor(private readonly options: ProtectSwitchOptions) {
    super((name, state) => options.store.saveSwitchState(name, state));
    this.clock = options.clock ?? systemClock;
  }

  get running(): boolean {
    return this.session !== undefined;
  }

  /**
   * `carry.proxied`: the proxy already points at a companion (a restart for new settings), so it stays set,
   * pages fail rather than go direct, until the new companion is up and the proxy is pointed at it; or
   * `blocked`: Protect was on when the browser closed, so pages are blocked from the start.
   */
  async start(carry: { proxied?: ProxiedTo } = {}): Promise<void> {
    if (this.session) return;
    const { store, channel } = this.options;
    const settings = await store.loadSettings();
    const pairing = settings.pairing;
    // Started again from an error that keeps pages blocked (the popup retries a missing companion): still blocked.
    const proxied =
      carry.proxied ?? (this.state.status === 'error' && this.state.blocking ? 'blocked' : undefined);
    if (proxied === 'blocked') await this.options.proxy.block(blockRules(settings));
    await this.setState(
      proxied === 'blocked'
        ? { status: 'reconnecting', detail: 'Starting the companion again.' }
        : {
            status: 'connecting',
            detail: pairing ? 'Connecting to the paired companion' : 'Starting the companion',
          },
    );
    const companion = pairing ? new PairedCompanion(pairing) : this.options.createCompanion();
    const session: ProtectSession = {
      companion,
      settings,
      joined: false,
      restarts: new CompanionRestarts({ ...this.options.restarts, clock: this.clock }),
      pathLost: false,
      renewing: false,
      applyingSettings: proxied !== undefined && proxied !== 'blocked',
      stats: ZERO_PROTECT_STATS,
      ...(pairing ? { pairing } : {}),
      ...(proxied ? { proxied } : {}),
    };
    this.session = session;
    await store.saveProtectInfo(EMPTY_PROTECT_INFO);

    const [started, opened] = await Promise.all([
      channel.send(this.startCommand(settings), { create: true }),
      companion.open(),
    ]);
    if (!opened.ok) return this.stop(this.failed(session, opened.failure));
    if (!started.ok) return this.stop(this.failed(session, started));
    await this.companionUp(session, companion, opened.ready);
  }

  /** The popup's "New path": a fresh path, the kill switch held meanwhile. Only while Protect is on. */
  async act(action: SwitchAction): Promise<void> {
    const session = this.session;
    if (action !== 'new-path' || !session || this.state.status !== 'on') return;
    // Before the engine makes its new links, which Firefox's tighter path-up policy would not let connect.
    await this.options.proxy.pathUp(false);
    await this.command({ target: 'offscreen', type: 'protect-new-path' });
  }

  /**
   * Settings the user changed while Protect runs take effect at once, with the kill switch held throughout:
   * the proxy is never cleared, so pages fail rather than go direct while the new settings are put in place.
   * Proxy settings (sites that bypass, loopback) are a new proxy rule; path settings (signaling server,
   * mode, directory keys) a new engine run joined to the same companion; a new pairing a new companion.
   */
  async applySettings(settings: Settings): Promise<void> {
    const session = this.session;
    if (!session) return;
    const change = settingsChangeFor(session.settings, settings);
    session.settings = settings;
    if (change.companion) return this.restartWith(session);
    // First the proxy: a new signaling server must bypass it before the engine dials it.
    if ((change.proxy || change.path) && session.proxied === 'blocked')
      await this.options.proxy.block(blockRules(settings));
    if ((change.proxy || change.path) && session.proxied && session.ready) {
      if (!(await this.pointProxy(session, session.ready))) return;
    }
    if (change.path) {
      if (session.proxied) await this.options.proxy.pathUp(false);
      session.path = undefined;
      session.joined = false;
      session.renewing = false;
      session.applyingSettings = true;
      await this.show(session);
      const started = await this.options.channel.send(this.startCommand(settings), { create: false });
      if (this.session !== session) return;
      if (!started.ok) return this.stop(this.failed(session, started));
      if (session.ready) {
        const joined = await this.options.channel.send(
          {
            target: 'offscreen',
            type: 'protect-companion',
            companion: { dataPort: session.ready.dataPort, secret: session.ready.secret },
          },
          { create: false },
        );
        if (!joined.ok && this.session === session) return this.stop(this.failed(session, joined));
      }
    }
  }

  /** A new companion (the pairing changed): this run ends and a new one starts, the proxy kept as it is. */
  private async restartWith(session: ProtectSession): Promise<void> {
    const proxied = session.proxied;
    this.session = undefined;
    if (session.restart?.timer !== undefined) this.clock.clearTimeout(session.restart.timer);
    await this.command({ target: 'offscreen', type: 'protect-stop' });
    session.companion.close();
    await this.start(proxied ? { proxied } : {});
  }

  private startCommand(settings: Settings): OffscreenCommand {
    return {
      target: 'offscreen',
      type: 'protect-start',
      signalingUrl: settings.signalingUrl,
      directoryKeys: settings.directoryKeys,
      mode: settings.mode,
    };
  }

  /** A companion said ready: point the proxy at it if it was set (a restart), and join its data socket. */
  private async companionUp(
    session: ProtectSession,
    companion: CompanionHandle,
    ready: CompanionReady,
  ): Promise<void> {
    session.companion = companion;
    session.ready = ready;
    session.joined = false;
    companion.on('closed', (failure) => {
      void this.options.queue.run(() => this.companionLost(session, companion, failure));
    });
    // The new data port must be in the proxy's bypass list before the offscreen document dials it.
    if (session.proxied && !(await this.pointProxy(session, ready))) return;
    await this.show(session);
    const joined = await this.options.channel.send(
      {
        target: 'offscreen',
        type: 'protect-companion',
        companion: { dataPort: ready.dataPort, secret: ready.secret },
      },
      { create: false },
    );
    if (!joined.ok && this.session === session) await this.stop(this.failed(session, joined));
  }

  /** Word that a companion went away, from its native port or from the engines' host (its data socket). */
  private async companionLost(
    session: ProtectSession,
    companion: CompanionHandle,
    failure: CompanionFailure,
  ): Promise<void> {
    if (this.session !== session || session.companion !== companion || session.restart) return;
    // A companion started by hand is the user's to start again: say how.
    if (session.pairing) return this.stop(this.failed(session, failure));
    session.ready = undefined;
    session.joined = false;
    // If it still runs (only its data socket died), closing its port makes it exit: the new one replaces it.
    companion.close();
    await this.scheduleRestart(session, failure);
  }

  private async scheduleRestart(session: ProtectSession, failure: CompanionFailure): Promise<void> {
    const decision = session.restarts.next();
    if (!decision.ok) {
      return this.stop({
        status: 'error',
        ...switchError(
          'companion-exited',
          `The companion stopped ${decision.startsInWindow + 1} times within ${Math.round(decision.windowMs / 1000)} s, so Underpass stopped starting it again (last: ${failure.reason}). Turn Protect off and on to try again.`,
        ),
      });
    }
    const restart: Restart = { attempt: decision.attempt, left: decision.left, delayMs: decision.delayMs };
    session.restart = restart;
    restart.timer = this.clock.setTimeout(() => {
      void this.options.queue.run(() => this.restartCompanion(session, restart));
    }, decision.delayMs);
    await this.show(session);
  }

  private async restartCompanion(session: ProtectSession, restart: Restart): Promise<void> {
    if (this.session !== session || session.restart !== restart) return;
    const companion = this.options.createCompanion();
    session.companion = companion;
    const opened = await companion.open();
    if (this.session !== session) {
      companion.close();
      return;
    }
    session.restart = undefined;
    if (!opened.ok) {
      if (PERMANENT_COMPANION_FAILURES.has(opened.failure.code))
        return this.stop(this.failed(session, opened.failure));
      return this.scheduleRestart(session, opened.failure);
    }
    await this.companionUp(session, companion, opened.ready);
  }

  private async onCompanionLink(link: CompanionLink): Promise<void> {
    const session = this.session;
    // Word about a companion that was already replaced (or a run that ended) changes nothing.
    if (!session?.ready || session.ready.dataPort !== link.dataPort) return;
    if (link.status === 'joined') {
      session.joined = true;
      session.restarts.succeeded();
      return this.show(session);
    }
    await this.companionLost(session, session.companion, { code: link.code, reason: link.reason });
  }

  /** An error keeps the proxy if it was set (nothing goes out directly until the user turns Protect off). */
  async stop(final: SwitchState): Promise<void> {
    const session = this.session;
    this.session = undefined;
    if (session?.restart?.timer !== undefined) this.clock.clearTimeout(session.restart.timer);
    await this.command({ target: 'offscreen', type: 'protect-stop' });
    const keepProxy = final.status === 'error' && session?.proxied !== undefined;
    if (!keepProxy) await this.options.proxy.clear();
    session?.companion.close();
    if (final.status === 'off') await this.options.store.saveProtectInfo(EMPTY_PROTECT_INFO);
    await this.setState(
      keepProxy && final.status === 'error'
        ? { ...final, reason: withKillSwitchNote(final.reason), blocking: true }
        : final,
    );
  }

  /**
   * The companion's native port died with the previous worker or browser: a wanted Protect is rebuilt from
   * scratch, with pages blocked meanwhile (the user left it on: nothing may go direct before it is back). One
   * that had ended in an error stays there, with pages still blocked if they were, until the user turns it off.
   */
  async resume({ wanted, stored, engines }: ResumeInput): Promise<void> {
    if (engines && engines.protect.status !== 'off')
      await this.command({ target: 'offscreen', type: 'protect-stop' });
    if (wanted && stored.status !== 'error') {
      await this.start({ proxied: 'blocked' });
    } else if (!wanted) {
      await this.options.proxy.clear();
      await this.setState({ status: 'off' });
    } else {
      if (stored.status === 'error' && stored.blocking)
        await this.options.proxy.block(blockRules(await this.options.store.loadSettings()));
      this.showStored(stored);
    }
  }

  async onEngineEvent(event: EngineEvent): Promise<void> {
    if (event.type === 'protect-state') await this.onEngineState(event.state);
    else if (event.type === 'protect-companion-link') await this.onCompanionLink(event.link);
    else if (event.type === 'protect-stats' && this.session) {
      this.session.stats = event.stats;
      await this.saveInfo(this.session);
    }
  }

  private async onEngineState(state: ProtectEngineState): Promise<void> {
    const session = this.session;
    if (!session) {
      // An engine running without a session (e.g. left over from a previous worker) must not keep going.
      if (state.status !== 'off' && state.status !== 'error')
        await this.command({ target: 'offscreen', type: 'protect-stop' });
      return;
    }
    switch (state.status) {
      case 'off':
        return;
      case 'connecting':
        session.pathLost = false;
        return this.show(session);
      case 'reconnecting':
        session.path = undefined;
        session.renewing = state.renewing === true;
        session.pathLost = !session.renewing;
        await this.saveInfo(session);
        return this.show(session);
      case 'protected':
        session.path = state.path;
        session.pathLost = false;
        session.renewing = false;
        session.applyingSettings = false;
        await this.saveInfo(session);
        return this.show(session);
      case 'error':
        return this.stop(this.failed(session, state));
    }
  }

  /**
   * Shows where the session is, from what is up: Protect is on only when the path and the companion are both up
   * and the proxy points at that companion. The companion's restart says more than the path's state: the
   * path may be fine and still carry nothing.
   */
  private async show(session: ProtectSession): Promise<void> {
    if (this.session !== session) return;
    const blocking = session.proxied !== undefined;
    if (session.restart) {
      const { attempt, left, delayMs } = session.restart;
      const when = delayMs > 0 ? ` in ${formatSeconds(delayMs)}` : '';
      const detail = `the companion stopped. Starting it again${when} (attempt ${attempt}, ${left} more allowed this minute)${blocking ? '; nothing goes out directly meanwhile' : ''}.`;
      return this.setState(blocking ? { status: 'reconnecting', detail } : { status: 'connecting', detail });
    }
    const { ready, path } = session;
    if (ready && path && session.joined) {
      if (!session.proxied && !(await this.pointProxy(session, ready))) return;
      await this.options.proxy.pathUp(true);
      const detail =
        path.mode === 'two-hop' && path.relayPeerId
          ? `Through relay ${shortId(path.relayPeerId)} to exit ${shortId(path.exitPeerId)}`
          : `Direct to exit ${shortId(path.exitPeerId)}`;
      return this.setState({ status: 'on', detail });
    }
    if (!blocking) return this.setState(FINDING_A_PATH);
    // A path is being built under the proxy: our new links must be able to connect (Firefox, see proxy-control).
    if (!path) await this.options.proxy.pathUp(false);
    // Once the proxy is set, anything short of "on" blocks pages: reconnecting, with why.
    if (session.renewing)
      return this.setState({
        status: 'reconnecting',
        detail: 'Finding a new path… Nothing goes out directly meanwhile.',
      });
    if (session.applyingSettings)
      return this.setState({
        status: 'reconnecting',
        detail: 'Applying the new settings… Nothing goes out directly meanwhile.',
      });
    if (!ready) return this.setState({ status: 'reconnecting', detail: 'Starting the companion again.' });
    if (session.pathLost || !path)
      return this.setState({
        status: 'reconnecting',
        detail: 'The path was lost. Rebuilding it; nothing goes out directly meanwhile.',
      });
    return this.setState({
      status: 'reconnecting',
      detail: 'The companion is back; joining it to the path. Nothing goes out directly meanwhile.',
    });
  }

  /** Points the proxy at the companion that said `ready` (a single set: never cleared in between). */
  private async pointProxy(session: ProtectSession, ready: CompanionReady): Promise<boolean> {
    const applied = await this.options.proxy.apply({
      socksPort: ready.socksPort,
      dataPort: ready.dataPort,
      signalingUrl: session.settings.signalingUrl,
      routeLoopback: session.settings.routeLoopback,
      bypassSites: session.settings.bypassSites,
    });
    if (!applied.ok) {
      await this.stop(this.failed(session, applied));
      return false;
    }
    session.proxied = { socksPort: ready.socksPort, dataPort: ready.dataPort };
    return true;
  }

  /** The error state for a failure, in the words that fit how this session's companion was started. */
  private failed(session: ProtectSession, failure: CompanionFailure): SwitchState {
    const explained = session.pairing ? explainPairedFailure(failure, session.pairing) : failure;
    return { status: 'error', ...switchError(explained.code, explained.reason) };
  }

  private async saveInfo(session: ProtectSession): Promise<void> {
    if (this.session !== session) return;
    await this.options.store.saveProtectInfo({
      stats: session.stats,
      ...(session.path ? { path: session.path } : {}),
      ...(session.renewing ? { renewing: true } : {}),
    });
  }

  private async command(command: OffscreenCommand): Promise<void> {
    await this.options.channel.send(command, { create: false });
  }
}

const KILL_SWITCH_NOTE = ' Traffic stays blocked until you turn Protect off.';

/** The reason, then the note: the reason is shortened if need be, never the note (it says what still holds). */
function withKillSwitchNote(reason: string): string {
  const room = MAX_REASON_LENGTH - KILL_SWITCH_NOTE.length;
  return `${reason.length <= room ? reason : `${reason.slice(0, room - 1)}…`}${KILL_SWITCH_NOTE}`;
}

/** What goes direct while pages are blocked: our own signaling server (the rules' own exceptions). */
function blockRules(settings: Settings): BlockRuleInput {
  return {
    signalingUrl: settings.signalingUrl,
    routeLoopback: settings.routeLoopback,
    bypassSites: settings.bypassSites,
  };
}

function formatSeconds(ms: number): string {
  return ms < 1_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 12)}…` : id;
}
