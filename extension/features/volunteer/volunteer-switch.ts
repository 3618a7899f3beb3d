import { systemClock, type Clock } from '@underpass/shared/clock';
import type { EngineChannel } from '../../lib/engine-channel';
import { SwitchBase, type FeatureSwitch, type ResumeInput } from '../../lib/feature-switch';
import type { EngineEvent, OffscreenCommand, SwitchName, SwitchState } from '../../lib/messages';
import type { Settings } from '../../lib/settings';
import { truncateReason } from '../../lib/switch-error';
import { helpedSince } from './volunteer-history';
import { HistoryRecorder, type HistoryStore } from './volunteer-history-recorder';
import { type VolunteerEngineState, type VolunteerStats, ZERO_VOLUNTEER_STATS } from './volunteer-messages';
import { capReached, relayedSince, usageThisMonth, type VolunteerUsage } from './volunteer-usage';

/**
 * Volunteer, as the background runs it: off → connecting → on, paused (the monthly data cap the volunteer
 * chose is reached; or, by the engines' host, on battery or a metered connection when the volunteer asked),
 * or error(reason). The relay engine runs in the engines' host; its counters come back as events, are stored
 * for the popup and counted into the month's usage and the seven-day history.
 */

export type VolunteerStore = HistoryStore & {
  loadSettings(): Promise<Settings>;
  saveSwitchState(name: SwitchName, state: SwitchState): Promise<void>;
  loadVolunteerStats(): Promise<VolunteerStats>;
  saveVolunteerStats(stats: VolunteerStats): Promise<void>;
  loadUsage(): Promise<VolunteerUsage | undefined>;
  saveUsage(usage: VolunteerUsage): Promise<void>;
};

export type VolunteerSwitchOptions = {
  channel: EngineChannel;
  store: VolunteerStore;
  /** Wall-clock time, for the month the usage counts into and the day of the history. */
  now?: () => number;
  /** The history's write timer. */
  timers?: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
};

export class VolunteerSwitch extends SwitchBase implements FeatureSwitch {
  readonly name = 'volunteer';
  private relaying = false;
  private clients = 0;
  /** What the engines' host runs the relay with, so that only a change to one of them restarts it. */
  private relayStartedWith: RelaySettings | undefined;
  private readonly history: HistoryRecorder;
  /** False while this browser cannot let a new link connect (see takeNewClients). */
  private takingNew = true;

  constructor(private readonly options: VolunteerSwitchOptions) {
    super((name, state) => options.store.saveSwitchState(name, state));
    this.history = new HistoryRecorder({
      store: options.store,
      now: options.now ?? Date.now,
      timers: options.timers ?? systemClock,
    });
  }

  get running(): boolean {
    return this.relaying;
  }

  /** People this browser relays for right now (the badge shows it). */
  get clientsNow(): number {
    return this.clients;
  }

  async start(): Promise<void> {
    if (this.relaying) return;
    const settings = await this.options.store.loadSettings();
    if (capReached(await this.usage(), settings.volunteerMonthlyMiB)) {
      await this.setState(monthlyCapPause(settings.volunteerMonthlyMiB));
      return;
    }
    this.relaying = true;
    this.clients = 0;
    await this.options.store.saveVolunteerStats(ZERO_VOLUNTEER_STATS);
    await this.startRelay(settings);
  }

  /**
   * Settings the volunteer changed take effect at once. A new monthly cap pauses or resumes by itself; a new
   * signaling server, capacity, bandwidth cap or pause choice starts the relay again with them (the host
   * stops the old relay first, whose clients rebuild their paths through another volunteer, as on a pause).
   */
  async applySettings(settings: Settings): Promise<void> {
    const pausedAtCap = this.state.status === 'paused' && this.state.code === 'monthly-cap';
    if (!this.relaying && !pausedAtCap) return;
    if (capReached(await this.usage(), settings.volunteerMonthlyMiB)) {
      const pause = monthlyCapPause(settings.volunteerMonthlyMiB);
      await (this.relaying ? this.stop(pause) : this.setState(pause));
      return;
    }
    if (!this.relaying) return this.start();
    if (this.relayStartedWith && sameRelaySettings(this.relayStartedWith, relaySettings(settings))) return;
    // The stored counters are kept: the old relay's last report still counts against them, and the new
    // run's first report, lower than them, is taken as a new run's (volunteer-usage.ts relayedSince).
    await this.history.flush();
    await this.startRelay(settings);
  }

  /**
   * Whether new people may come to this relay. Firefox's WebRTC policy, held strict while the user's own Protect
   * is up, binds the add-on's links too: a new one cannot connect then, so the relay must not be named to anyone
   * (the people it relays for keep their links). Nothing to do while it is not relaying: the next start says it.
   */
  async takeNewClients(take: boolean): Promise<void> {
    if (this.takingNew === take) return;
    this.takingNew = take;
    if (!this.relaying) return;
    await this.options.channel.send(
      { target: 'offscreen', type: 'volunteer-new-clients', take },
      { create: false },
    );
  }

  private async startRelay(settings: Settings): Promise<void> {
    const relay = relaySettings(settings);
    this.relayStartedWith = relay;
    await this.setState(toSwitchState({ status: 'connecting' }));
    const reply = await this.options.channel.send(
      { target: 'offscreen', type: 'volunteer-start', ...relay, takeNewClients: this.takingNew },
      { create: true },
    );
    if (!reply.ok && this.relaying)
      await this.stop({ status: 'error', code: reply.code, reason: reply.reason });
  }

  async stop(final: SwitchState): Promise<void> {
    this.relaying = false;
    this.clients = 0;
    this.relayStartedWith = undefined;
    await this.options.channel.send({ target: 'offscreen', type: 'volunteer-stop' }, { create: false });
    await this.history.flush();
    await this.setState(final);
  }

  async resume({ wanted, stored, engines }: ResumeInput): Promise<void> {
    const engine = engines?.volunteer;
    const adoptable =
      engine?.status === 'on' ||
      engine?.status === 'connecting' ||
      engine?.status === 'reconnecting' ||
      engine?.status === 'paused';
    if (wanted && engine && adoptable) {
      // The relay outlived the worker in the engines' host: adopt it, its clients keep their circuits.
      this.relaying = true;
      // Started by an earlier worker with the settings stored then (a change since has already been applied).
      this.relayStartedWith = relaySettings(await this.options.store.loadSettings());
      await this.setState(toSwitchState(engine));
    } else if (wanted && stored.status !== 'error') {
      // A pause for the monthly cap ends with the month: start() checks again.
      await this.start();
    } else if (!wanted) {
      if (adoptable)
        await this.options.channel.send({ target: 'offscreen', type: 'volunteer-stop' }, { create: false });
      await this.setState({ status: 'off' });
    } else {
      this.showStored(stored);
    }
  }

  async onEngineEvent(event: EngineEvent): Promise<void> {
    if (event.type === 'volunteer-state') await this.onEngineState(event.state);
    else if (event.type === 'volunteer-stats' && this.relaying) await this.onStats(event.stats);
  }

  private async onEngineState(state: VolunteerEngineState): Promise<void> {
    if (!this.relaying) {
      // A relay running without the user's say (e.g. left over from a previous worker) must not keep going.
      if (state.status !== 'off' && state.status !== 'error')
        await this.options.channel.send({ target: 'offscreen', type: 'volunteer-stop' }, { create: false });
      return;
    }
    if (state.status === 'off') return;
    if (state.status === 'error') return this.stop(toSwitchState(state));
    if (state.status === 'paused') {
      // The host stopped the relay (its last counters came first): the next run counts from zero again.
      await this.history.flush();
      await this.options.store.saveVolunteerStats(ZERO_VOLUNTEER_STATS);
      this.clients = 0;
    }
    await this.setState(toSwitchState(state));
  }

  /** Counts what this run relayed into the month's usage, and pauses at the volunteer's monthly cap. */
  private async onStats(stats: VolunteerStats): Promise<void> {
    const { store } = this.options;
    const previous = await store.loadVolunteerStats();
    await store.saveVolunteerStats(stats);
    const usage = await this.usage();
    const delta = relayedSince(previous, stats);
    const next = { month: usage.month, bytes: usage.bytes + delta };
    if (delta > 0) await store.saveUsage(next);
    this.history.record({ helped: helpedSince(previous, stats), bytes: delta });
    if (stats.clientsNow !== this.clients) {
      this.clients = stats.clientsNow;
      this.emit('change', this.state);
    }
    const settings = await store.loadSettings();
    if (capReached(next, settings.volunteerMonthlyMiB))
      await this.stop(monthlyCapPause(settings.volunteerMonthlyMiB));
  }

  private async usage(): Promise<VolunteerUsage> {
    return usageThisMonth(await this.options.store.loadUsage(), (this.options.now ?? Date.now)());
  }
}

type RelaySettings = Omit<Extract<OffscreenCommand, { type: 'volunteer-start' }>, 'target' | 'type'>;

function relaySettings(settings: Settings): RelaySettings {
  return {
    signalingUrl: settings.signalingUrl,
    capacity: settings.volunteerCapacity,
    bandwidthBytesPerSec: settings.volunteerBandwidthKiBps * 1024,
    pauseOnBattery: settings.volunteerPauseOnBattery,
    pauseOnMetered: settings.volunteerPauseOnMetered,
  };
}

function sameRelaySettings(a: RelaySettings, b: RelaySettings): boolean {
  return (Object.keys(a) as (keyof RelaySettings)[]).every((key) => a[key] === b[key]);
}

function monthlyCapPause(capMiB: number): SwitchState {
  return {
    status: 'paused',
    code: 'monthly-cap',
    reason: `Paused: this month's data cap (${capMiB} MiB) is reached. It resumes next month, or raise the cap in the settings.`,
  };
}

function toSwitchState(state: VolunteerEngineState): SwitchState {
  switch (state.status) {
    case 'off':
      return { status: 'off' };
    case 'connecting':
      return { status: 'connecting', detail: 'Announcing to the signaling server' };
    case 'on':
      return { status: 'on', detail: 'Relaying for others' };
    case 'reconnecting':
      // The relay still carries the circuits it has; only new clients wait for the server.
      return {
        status: 'reconnecting',
        detail: truncateReason(
          `attempt ${state.attempt}, next in ${Math.ceil(state.nextInMs / 1000)} s (${state.reason})`,
        ),
      };
    case 'paused':
      // The popup words these in the user's language by their code; this reason is the stored fallback.
      return {
        status: 'paused',
        code: state.code,
        reason:
          state.code === 'on-battery'
            ? 'Paused: on battery. It resumes by itself once the browser is plugged in.'
            : 'Paused: on a metered connection. It resumes by itself once off it.',
      };
    case 'error':
      return state;
  }
}
