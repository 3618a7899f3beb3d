import type {
  CompanionFailure,
  CompanionHandle,
  CompanionOpenResult,
  CompanionReady,
} from './companion-port';
import type { EngineChannel } from './engine-channel';
import {
  ZERO_PROTECT_STATS,
  ZERO_VOLUNTEER_STATS,
  type EngineEvent,
  type ProtectInfo,
  type ProtectPath,
  type ProtectStatsWire,
  type ProtectEngineState,
  type SwitchName,
  type SwitchState,
  type UiReply,
  type VolunteerEngineState,
  type VolunteerStatsWire,
  truncateReason,
} from './messages';
import { explainPairedFailure, PairedCompanion } from './paired-companion';
import type { Pairing } from './pairing-code';
import type { ProxyControl } from './proxy-control';
import type { Settings } from './settings';
import type { VolunteerUsage, Wanted } from './store';

/**
 * The two switches' state machines, run by the background. Each switch is off → connecting → on, or
 * error(reason) from anywhere; the state is written to storage.session for the popup.
 *
 * Protect: start the companion (native messaging, or take the ports and secret of a hand-started companion
 * the user paired in the settings) → have the engines' host build a path and bridge the companion's data
 * socket → when the path is up, point the proxy at the companion. Once the proxy is set it stays set until
 * the user turns Protect off, even if the path breaks: pages fail rather than leak.
 *
 * Volunteer: start the relay engine; its counters come back as events and are stored for the popup.
 */

export type ControllerStore = {
  loadSettings(): Promise<Settings>;
  loadWanted(): Promise<Wanted>;
  saveWanted(name: SwitchName, on: boolean): Promise<void>;
  loadSwitchState(name: SwitchName): Promise<SwitchState>;
  saveSwitchState(name: SwitchName, state: SwitchState): Promise<void>;
  loadVolunteerStats(): Promise<VolunteerStatsWire>;
  saveVolunteerStats(stats: VolunteerStatsWire): Promise<void>;
  saveProtectInfo(info: ProtectInfo): Promise<void>;
  loadUsage(): Promise<VolunteerUsage | undefined>;
  saveUsage(usage: VolunteerUsage): Promise<void>;
};

/** What the toolbar badge is drawn from. */
export type BadgeInput = { protect: SwitchState; volunteer: SwitchState; clientsNow: number };

export type ControllerOptions = {
  channel: EngineChannel;
  proxy: ProxyControl;
  /** Starts the companion through native messaging; used when no hand-started companion is paired. */
  createCompanion: () => CompanionHandle;
  store: ControllerStore;
  /** Called after every state change, e.g. to update the toolbar badge. */
  onState?: (name: SwitchName, state: SwitchState) => void;
  /** Called whenever something the badge shows changes. */
  onBadge?: (input: BadgeInput) => void;
  /** How long a companion is kept after Protect off (default COMPANION_LINGER_MS; 0: never). */
  companionLingerMs?: number;
  /** Injected for tests (the monthly cap's month). */
  now?: () => number;
};

type ProtectSession = {
  companion: CompanionHandle;
  /** Set when the companion was started by hand and paired: its failures are explained differently. */
  pairing?: Pairing;
  ready?: CompanionReady;
  settings: Settings;
  proxySet: boolean;
  path?: ProtectPath;
  stats: ProtectStatsWire;
  onCompanionClosed?: (failure: CompanionFailure) => void;
};

type WarmCompanion = {
  companion: CompanionHandle;
  ready: CompanionReady;
  timer: ReturnType<typeof setTimeout>;
};

/** How long an idle native-messaging companion is kept after Protect is turned off. */
export const COMPANION_LINGER_MS = 0;

export class BackgroundController {
  private protect: ProtectSession | undefined;
  private volunteerRunning = false;
  private volunteerClients = 0;
  private warm: WarmCompanion | undefined;
  private readonly states: Record<SwitchName, SwitchState> = {
    protect: { status: 'off' },
    volunteer: { status: 'off' },
  };
  /** Serializes switch operations so a fast on/off/on cannot interleave two starts. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: ControllerOptions) {
    options.channel.onEvent((event) => {
      void this.enqueue(() => this.onEngineEvent(event));
    });
  }

  state(name: SwitchName): SwitchState {
    return this.states[name];
  }

  setSwitch(name: SwitchName, on: boolean): Promise<UiReply> {
    return this.enqueue(async () => {
      await this.options.store.saveWanted(name, on);
      if (name === 'protect') await (on ? this.startProtect() : this.stopProtect({ status: 'off' }));
      else await (on ? this.startVolunteer() : this.stopVolunteer({ status: 'off' }));
      return { ok: true } as const;
    }).catch(
      (error: unknown) => ({ ok: false, code: 'internal', message: String(error).slice(0, 500) }) as const,
    );
  }

  /**
   * Brings a (re)started worker in line with what the user asked for. The companion's native port died
   * with the previous worker, so a wanted Protect is rebuilt from scratch; a running relay is adopted. A
   * switch that ended in an error stays there until the user acts: no retry loop behind their back.
   */
  resume(): Promise<void> {
    return this.enqueue(async () => {
      const { store, channel, proxy } = this.options;
      const wanted = await store.loadWanted();
      const stored = {
        protect: await store.loadSwitchState('protect'),
        volunteer: await store.loadSwitchState('volunteer'),
      };
      const status = await channel.send({ target: 'offscreen', type: 'status' }, { create: false });
      const engines = status.ok ? status.status : undefined;

      if (!this.protect) {
        if (engines && engines.protect.status !== 'off') {
          await channel.send({ target: 'offscreen', type: 'protect-stop' }, { create: false });
        }
        if (wanted.protect && stored.protect.status !== 'error') {
          await this.startProtect();
        } else if (!wanted.protect) {
          await proxy.clear();
          await this.setState('protect', { status: 'off' });
        } else {
          this.states.protect = stored.protect;
        }
      }

      if (!this.volunteerRunning) {
        const adoptable =
          engines && (engines.volunteer.status === 'on' || engines.volunteer.status === 'connecting');
        if (wanted.volunteer && adoptable) {
          this.volunteerRunning = true;
          await this.setState('volunteer', volunteerToSwitch(engines.volunteer));
        } else if (wanted.volunteer && stored.volunteer.status !== 'error') {
          // A pause for the monthly cap ends with the month: startVolunteer checks again.
          await this.startVolunteer();
        } else if (!wanted.volunteer) {
          if (adoptable)
            await channel.send({ target: 'offscreen', type: 'volunteer-stop' }, { create: false });
          await this.setState('volunteer', { status: 'off' });
        } else {
          this.states.volunteer = stored.volunteer;
        }
      }
      await this.releaseIfIdle();
    });
  }

  /** Periodic check (an alarm): if the engines' host vanished (crash, killed), say so instead of showing "on". */
  checkHost(): Promise<void> {
    return this.enqueue(async () => {
      if (!this.protect?.ready && !this.volunteerRunning) return;
      const status = await this.options.channel.send(
        { target: 'offscreen', type: 'status' },
        { create: false },
      );
      if (status.ok) return;
      const lost = {
        status: 'error',
        code: 'engine-host-lost',
        reason: 'The WebRTC engines stopped unexpectedly.',
      } as const;
      if (this.protect) await this.stopProtect(lost, { keepProxy: this.protect.proxySet });
      if (this.volunteerRunning) await this.stopVolunteer(lost);
    });
  }

  // ── Protect ──────────────────────────────────────────────────────────────────────────────────────────

  private async startProtect(): Promise<void> {
    if (this.protect) return;
    const settings = await this.options.store.loadSettings();
    const pairing = settings.pairing;
    await this.setState('protect', {
      status: 'connecting',
      detail: pairing ? 'Connecting to the paired companion' : 'Starting the companion',
    });
    const warm = pairing ? undefined : this.takeWarmCompanion();
    const companion =
      warm?.companion ?? (pairing ? new PairedCompanion(pairing) : this.options.createCompanion());
    const session: ProtectSession = {
      companion,
      settings,
      proxySet: false,
      stats: ZERO_PROTECT_STATS,
      ...(pairing ? { pairing } : {}),
    };
    this.protect = session;
    await this.options.store.saveProtectInfo({ stats: ZERO_PROTECT_STATS });
    const opening: Promise<CompanionOpenResult> = warm
      ? Promise.resolve({ ok: true, ready: warm.ready })
      : companion.open();
    // A missing companion fails within milliseconds; one that is starting takes about as long as a path. So
    // unless it failed at once, the path is built while the companion starts instead of after it.
    const early = await Promise.race([opening, delay(COMPANION_HEAD_START_MS)]);
    let engineStarted = false;
    if (early === undefined || early.ok) {
      engineStarted = true;
      const reply = await this.options.channel.send(
        {
          target: 'offscreen',
          type: 'protect-start',
          signalingUrl: settings.signalingUrl,
          ...(early?.ok ? { companion: companionTarget(early.ready) } : {}),
          mode: settings.mode,
        },
        { create: true },
      );
      if (!reply.ok && this.protect === session) {
        await this.stopProtect(failed(session, { code: reply.code, reason: reply.message }));
        companion.close();
        return;
      }
    }
    const opened = await opening;
    if (this.protect !== session) {
      companion.close();
      return;
    }
    if (!opened.ok) {
      if (engineStarted) {
        await this.stopProtect({ status: 'error', code: opened.failure.code, reason: opened.failure.reason });
        return;
      }
      this.protect = undefined;
      await this.setState('protect', {
        status: 'error',
        code: opened.failure.code,
        reason: opened.failure.reason,
      });
      return;
    }
    session.ready = opened.ready;
    if (!warm) this.watchCompanion(companion);
    session.onCompanionClosed = (failure) => {
      void this.enqueue(async () => {
        if (this.protect !== session) return;
        await this.stopProtect(
          { status: 'error', code: failure.code, reason: failure.reason },
          { keepProxy: session.proxySet },
        );
      });
    };
    await this.setState('protect', { status: 'connecting', detail: 'Finding a path' });
    if (!engineStarted) {
      const reply = await this.options.channel.send(
        {
          target: 'offscreen',
          type: 'protect-start',
          signalingUrl: settings.signalingUrl,
          companion: companionTarget(opened.ready),
          mode: settings.mode,
        },
        { create: true },
      );
      if (!reply.ok && this.protect === session) {
        await this.stopProtect(failed(session, { code: reply.code, reason: reply.message }));
      }
    } else if (!early?.ok) {
      const reply = await this.options.channel.send(
        { target: 'offscreen', type: 'protect-companion', companion: companionTarget(opened.ready) },
        { create: false },
      );
      if (!reply.ok && this.protect === session) {
        await this.stopProtect(failed(session, { code: reply.code, reason: reply.message }));
      }
    }
  }

  private async stopProtect(final: SwitchState, how: { keepProxy?: boolean } = {}): Promise<void> {
    const session = this.protect;
    this.protect = undefined;
    await this.options.channel.send({ target: 'offscreen', type: 'protect-stop' }, { create: false });
    if (!how.keepProxy) await this.options.proxy.clear();
    // A companion started through native messaging lingers a while after a plain "off": it takes a second
    // or two to start, and turning Protect back on soon after is common. It is idle without the proxy.
    if (
      session?.ready &&
      !session.pairing &&
      final.status === 'off' &&
      (this.options.companionLingerMs ?? COMPANION_LINGER_MS) > 0
    ) {
      this.keepWarm(session.companion, session.ready);
    } else {
      session?.companion.close();
    }
    if (final.status === 'off') await this.options.store.saveProtectInfo({ stats: ZERO_PROTECT_STATS });
    if (final.status === 'error' && how.keepProxy) {
      final = {
        ...final,
        reason: truncateReason(`${final.reason} Traffic stays blocked until you turn Protect off.`),
      };
    }
    await this.setState('protect', final);
    await this.releaseIfIdle();
  }

  private async onProtectState(state: ProtectEngineState): Promise<void> {
    const session = this.protect;
    if (!session?.ready) {
      // An engine running without a session (e.g. left over from a previous worker) must not keep going.
      if (state.status !== 'off' && state.status !== 'error') {
        await this.options.channel.send({ target: 'offscreen', type: 'protect-stop' }, { create: false });
      }
      return;
    }
    switch (state.status) {
      case 'off':
        return;
      case 'connecting':
        await this.setState('protect', { status: 'connecting', detail: 'Finding a path' });
        return;
      case 'reconnecting':
        session.path = undefined;
        await this.saveProtectInfo(session);
        // Before the first path the proxy is not set yet, so nothing is being blocked: still connecting.
        await this.setState(
          'protect',
          session.proxySet
            ? {
                status: 'reconnecting',
                detail: 'The path was lost. Rebuilding it; nothing goes out directly meanwhile.',
              }
            : { status: 'connecting', detail: 'Finding a path' },
        );
        return;
      case 'protected': {
        if (!session.proxySet) {
          const applied = await this.options.proxy.apply({
            socksPort: session.ready.socksPort,
            dataPort: session.ready.dataPort,
            signalingUrl: session.settings.signalingUrl,
            routeLoopback: session.settings.routeLoopback,
            bypassSites: session.settings.bypassSites,
          });
          if (!applied.ok) {
            await this.stopProtect({ status: 'error', code: applied.code, reason: applied.reason });
            return;
          }
          session.proxySet = true;
        }
        const path = state.path;
        session.path = path;
        await this.saveProtectInfo(session);
        const detail =
          path.mode === 'two-hop' && path.relayPeerId
            ? `Through relay ${shortId(path.relayPeerId)} to exit ${shortId(path.exitPeerId)}`
            : `Direct to exit ${shortId(path.exitPeerId)}`;
        await this.setState('protect', { status: 'on', detail });
        return;
      }
      case 'error':
        await this.stopProtect(failed(session, { code: state.code, reason: state.message }), {
          keepProxy: session.proxySet,
        });
        return;
    }
  }

  // ── Volunteer ────────────────────────────────────────────────────────────────────────────────────────

  private async startVolunteer(): Promise<void> {
    if (this.volunteerRunning) return;
    const settings = await this.options.store.loadSettings();
    const usage = await this.currentUsage();
    const capBytes = settings.volunteerMonthlyMiB * 1024 * 1024;
    if (capBytes > 0 && usage.bytes >= capBytes) {
      await this.setState('volunteer', monthlyCapPause(settings.volunteerMonthlyMiB));
      return;
    }
    this.volunteerRunning = true;
    this.volunteerClients = 0;
    await this.options.store.saveVolunteerStats(ZERO_VOLUNTEER_STATS);
    await this.setState('volunteer', { status: 'connecting', detail: 'Announcing to the signaling server' });
    const reply = await this.options.channel.send(
      {
        target: 'offscreen',
        type: 'volunteer-start',
        signalingUrl: settings.signalingUrl,
        capacity: settings.volunteerCapacity,
        bandwidthBytesPerSec: settings.volunteerBandwidthKiBps * 1024,
      },
      { create: true },
    );
    if (!reply.ok && this.volunteerRunning) {
      await this.stopVolunteer({ status: 'error', code: reply.code, reason: reply.message });
    }
  }

  private async stopVolunteer(final: SwitchState): Promise<void> {
    this.volunteerRunning = false;
    this.volunteerClients = 0;
    await this.options.channel.send({ target: 'offscreen', type: 'volunteer-stop' }, { create: false });
    await this.setState('volunteer', final);
    await this.releaseIfIdle();
  }

  private async onVolunteerState(state: VolunteerEngineState): Promise<void> {
    if (!this.volunteerRunning) {
      if (state.status === 'on' || state.status === 'connecting') {
        await this.options.channel.send({ target: 'offscreen', type: 'volunteer-stop' }, { create: false });
      }
      return;
    }
    if (state.status === 'off') return;
    if (state.status === 'error') {
      await this.stopVolunteer(volunteerToSwitch(state));
      return;
    }
    await this.setState('volunteer', volunteerToSwitch(state));
  }

  // ── plumbing ─────────────────────────────────────────────────────────────────────────────────────────

  private async onEngineEvent(event: EngineEvent): Promise<void> {
    switch (event.type) {
      case 'offscreen-ready':
        return;
      case 'protect-state':
        return this.onProtectState(event.state);
      case 'protect-stats':
        if (this.protect) {
          this.protect.stats = event.stats;
          await this.saveProtectInfo(this.protect);
        }
        return;
      case 'volunteer-state':
        return this.onVolunteerState(event.state);
      case 'volunteer-stats':
        if (this.volunteerRunning) await this.onVolunteerStats(event.stats);
        return;
    }
  }

  /** Counts what this run relayed into the month's usage, and pauses at the volunteer's monthly cap. */
  private async onVolunteerStats(stats: VolunteerStatsWire): Promise<void> {
    const { store } = this.options;
    const previous = await store.loadVolunteerStats();
    await store.saveVolunteerStats(stats);
    const relayed = (s: VolunteerStatsWire) => s.bytesFromClients + s.bytesToClients;
    // A new run starts from zero: then everything it reports is new.
    const delta = Math.max(0, relayed(stats) - (relayed(stats) >= relayed(previous) ? relayed(previous) : 0));
    const usage = await this.currentUsage();
    const next = { month: usage.month, bytes: usage.bytes + delta };
    if (delta > 0) await store.saveUsage(next);
    if (stats.clientsNow !== this.volunteerClients) {
      this.volunteerClients = stats.clientsNow;
      this.badge();
    }
    const settings = await store.loadSettings();
    const capBytes = settings.volunteerMonthlyMiB * 1024 * 1024;
    if (capBytes > 0 && next.bytes >= capBytes) {
      await this.stopVolunteer(monthlyCapPause(settings.volunteerMonthlyMiB));
    }
  }

  private async currentUsage(): Promise<VolunteerUsage> {
    const month = new Date((this.options.now ?? Date.now)()).toISOString().slice(0, 7);
    const stored = await this.options.store.loadUsage();
    return stored?.month === month ? stored : { month, bytes: 0 };
  }

  private async saveProtectInfo(session: ProtectSession): Promise<void> {
    if (this.protect !== session) return;
    await this.options.store.saveProtectInfo({
      stats: session.stats,
      ...(session.path ? { path: session.path } : {}),
    });
  }

  /** One 'closed' listener per companion, for its whole life: it reports to whichever session uses it. */
  private watchCompanion(companion: CompanionHandle): void {
    companion.on('closed', (failure) => {
      if (this.warm?.companion === companion) {
        clearTimeout(this.warm.timer);
        this.warm = undefined;
        return;
      }
      if (this.protect?.companion === companion) this.protect.onCompanionClosed?.(failure);
    });
  }

  private keepWarm(companion: CompanionHandle, ready: CompanionReady): void {
    this.dropWarmCompanion();
    const timer = setTimeout(() => {
      if (this.warm?.companion !== companion) return;
      this.warm = undefined;
      companion.close();
      void this.enqueue(() => this.releaseIfIdle());
    }, this.options.companionLingerMs ?? COMPANION_LINGER_MS);
    this.warm = { companion, ready, timer };
  }

  private takeWarmCompanion(): WarmCompanion | undefined {
    const warm = this.warm;
    if (!warm) return undefined;
    clearTimeout(warm.timer);
    this.warm = undefined;
    return warm;
  }

  private dropWarmCompanion(): void {
    const warm = this.takeWarmCompanion();
    warm?.companion.close();
  }

  private badge(): void {
    this.options.onBadge?.({
      protect: this.states.protect,
      volunteer: this.states.volunteer,
      clientsNow: this.volunteerClients,
    });
  }

  /** Closes the engines' document when nothing uses it; a warm companion keeps it, for a fast next start. */
  private async releaseIfIdle(): Promise<void> {
    if (!this.protect && !this.volunteerRunning && !this.warm) await this.options.channel.release();
  }

  private async setState(name: SwitchName, state: SwitchState): Promise<void> {
    this.states[name] = state;
    await this.options.store.saveSwitchState(name, state);
    this.options.onState?.(name, state);
    this.badge();
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task, task);
    this.queue = next.catch((error: unknown) => console.error('underpass: background task failed', error));
    return next;
  }
}

/** How long the companion gets to fail before the path is built alongside its start (see startProtect). */
const COMPANION_HEAD_START_MS = 150;

function delay(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms));
}

function companionTarget(ready: CompanionReady): { dataPort: number; secret: string } {
  return { dataPort: ready.dataPort, secret: ready.secret };
}

function monthlyCapPause(capMiB: number): SwitchState {
  return {
    status: 'paused',
    code: 'monthly-cap',
    reason: `Paused: this month's data cap (${capMiB} MiB) is reached. It resumes next month, or raise the cap in the settings.`,
  };
}

function volunteerToSwitch(state: VolunteerEngineState): SwitchState {
  switch (state.status) {
    case 'off':
      return { status: 'off' };
    case 'connecting':
      return { status: 'connecting', detail: 'Announcing to the signaling server' };
    case 'on':
      return { status: 'on', detail: 'Relaying for others' };
    case 'error':
      return { status: 'error', code: state.code, reason: state.message };
  }
}

/** The error state for a Protect failure, in the words that fit how this session's companion was started. */
function failed(session: ProtectSession, failure: CompanionFailure): SwitchState {
  const explained = session.pairing ? explainPairedFailure(failure, session.pairing) : failure;
  return { status: 'error', code: explained.code, reason: explained.reason };
}

function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 12)}…` : id;
}
