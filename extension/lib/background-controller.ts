import type { CompanionFailure, CompanionHandle, CompanionReady } from './companion-port';
import type { EngineChannel } from './engine-channel';
import {
  ZERO_VOLUNTEER_STATS,
  type EngineEvent,
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
import type { Wanted } from './store';

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
  saveVolunteerStats(stats: VolunteerStatsWire): Promise<void>;
};

export type ControllerOptions = {
  channel: EngineChannel;
  proxy: ProxyControl;
  /** Starts the companion through native messaging; used when no hand-started companion is paired. */
  createCompanion: () => CompanionHandle;
  store: ControllerStore;
  /** Called after every state change, e.g. to update the toolbar badge. */
  onState?: (name: SwitchName, state: SwitchState) => void;
};

type ProtectSession = {
  companion: CompanionHandle;
  /** Set when the companion was started by hand and paired: its failures are explained differently. */
  pairing?: Pairing;
  ready?: CompanionReady;
  settings: Settings;
  proxySet: boolean;
};

export class BackgroundController {
  private protect: ProtectSession | undefined;
  private volunteerRunning = false;
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
    const companion = pairing ? new PairedCompanion(pairing) : this.options.createCompanion();
    const session: ProtectSession = { companion, settings, proxySet: false, ...(pairing ? { pairing } : {}) };
    this.protect = session;
    const opened = await companion.open();
    if (this.protect !== session) {
      companion.close();
      return;
    }
    if (!opened.ok) {
      this.protect = undefined;
      await this.setState('protect', {
        status: 'error',
        code: opened.failure.code,
        reason: opened.failure.reason,
      });
      return;
    }
    session.ready = opened.ready;
    companion.on('closed', (failure) => {
      void this.enqueue(async () => {
        if (this.protect !== session) return;
        await this.stopProtect(
          { status: 'error', code: failure.code, reason: failure.reason },
          { keepProxy: session.proxySet },
        );
      });
    });

    await this.setState('protect', { status: 'connecting', detail: 'Finding a path' });
    const reply = await this.options.channel.send(
      {
        target: 'offscreen',
        type: 'protect-start',
        signalingUrl: settings.signalingUrl,
        companion: { dataPort: opened.ready.dataPort, secret: opened.ready.secret },
        mode: 'two-hop',
      },
      { create: true },
    );
    if (!reply.ok && this.protect === session) {
      await this.stopProtect(failed(session, { code: reply.code, reason: reply.message }));
    }
  }

  private async stopProtect(final: SwitchState, how: { keepProxy?: boolean } = {}): Promise<void> {
    const session = this.protect;
    this.protect = undefined;
    await this.options.channel.send({ target: 'offscreen', type: 'protect-stop' }, { create: false });
    if (!how.keepProxy) await this.options.proxy.clear();
    session?.companion.close();
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
        await this.setState('protect', { status: 'connecting', detail: 'Path lost, rebuilding it' });
        return;
      case 'protected': {
        if (!session.proxySet) {
          const applied = await this.options.proxy.apply({
            socksPort: session.ready.socksPort,
            dataPort: session.ready.dataPort,
            signalingUrl: session.settings.signalingUrl,
            routeLoopback: session.settings.routeLoopback,
          });
          if (!applied.ok) {
            await this.stopProtect({ status: 'error', code: applied.code, reason: applied.reason });
            return;
          }
          session.proxySet = true;
        }
        const path = state.path;
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
    this.volunteerRunning = true;
    await this.options.store.saveVolunteerStats(ZERO_VOLUNTEER_STATS);
    await this.setState('volunteer', { status: 'connecting', detail: 'Announcing to the signaling server' });
    const settings = await this.options.store.loadSettings();
    const reply = await this.options.channel.send(
      {
        target: 'offscreen',
        type: 'volunteer-start',
        signalingUrl: settings.signalingUrl,
        capacity: settings.volunteerCapacity,
      },
      { create: true },
    );
    if (!reply.ok && this.volunteerRunning) {
      await this.stopVolunteer({ status: 'error', code: reply.code, reason: reply.message });
    }
  }

  private async stopVolunteer(final: SwitchState): Promise<void> {
    this.volunteerRunning = false;
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
        return;
      case 'volunteer-state':
        return this.onVolunteerState(event.state);
      case 'volunteer-stats':
        if (this.volunteerRunning) await this.options.store.saveVolunteerStats(event.stats);
        return;
    }
  }

  private async releaseIfIdle(): Promise<void> {
    if (!this.protect && !this.volunteerRunning) await this.options.channel.release();
  }

  private async setState(name: SwitchName, state: SwitchState): Promise<void> {
    this.states[name] = state;
    await this.options.store.saveSwitchState(name, state);
    this.options.onState?.(name, state);
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task, task);
    this.queue = next.catch((error: unknown) => console.error('underpass: background task failed', error));
    return next;
  }
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
