import { systemClock, type Clock } from '@underpass/shared/clock';
import { VolunteerEngine } from '@underpass/shared/engines';
import { type PeerFactory } from '@underpass/shared/links';
import { ReconnectingSignaling, type SignalingConnectionState } from '@underpass/shared/signaling';
import type { FeatureHost } from '../../lib/engine-host';
import type { EngineEvent, OffscreenCommand } from '../../lib/messages';
import { switchError, toSwitchError, truncateReason } from '../../lib/switch-error';
import { safely } from '../../lib/safely';
import type { PauseReason, VolunteerEngineState, VolunteerStats } from './volunteer-messages';
import { PauseWatch, type ConditionSource } from './volunteer-pause-watch';

/**
 * Volunteer in the engines' host: runs the relay engine and reports its state and counters to the background.
 * A signaling server lost after the relay was on is not the end of it: the relay keeps its clients' circuits
 * (their WebRTC links do not need the server) and reconnects by itself, shown as `reconnecting`.
 */

/** Relay counters change on every cell; the popup needs a few updates a second at most. */
export const VOLUNTEER_STATS_INTERVAL_MS = 500;

export type VolunteerHostOptions = {
  createPeer: PeerFactory;
  WebSocket: typeof WebSocket;
  emit: (event: EngineEvent) => void;
  /** What the browser tells about battery and network, for the pause the volunteer may ask for. */
  conditions: () => Promise<ConditionSource>;
  /** Injected for tests: the pause's resume delay. */
  clock?: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
};

type StartCommand = Extract<OffscreenCommand, { type: 'volunteer-start' }>;

/** The volunteer's wish to relay, from one start command: the relay runs, or is paused for a condition. */
type VolunteerRun = {
  command: StartCommand;
  watch?: PauseWatch;
  relay?: RelayRun;
};

/** One relay engine's life: started, or started again after a pause. */
type RelayRun = {
  engine: VolunteerEngine;
  /** engine.start() resolved: from now on the signaling connection's state is the run's. */
  started?: boolean;
  statsTimer?: ReturnType<typeof setInterval>;
  lastSent?: VolunteerStats;
};

export class VolunteerHost implements FeatureHost<'volunteer'> {
  readonly name = 'volunteer';
  private run: VolunteerRun | undefined;
  private current: VolunteerEngineState = { status: 'off' };
  /** Whether new clients may come (volunteer-new-clients); kept across runs, as it is the browser's, not theirs. */
  private takingNew = true;

  constructor(private readonly options: VolunteerHostOptions) {}

  get state(): VolunteerEngineState {
    return this.current;
  }

  handle(command: OffscreenCommand): boolean {
    switch (command.type) {
      case 'volunteer-start':
        void this.start(command);
        return true;
      case 'volunteer-stop':
        this.stop({ status: 'off' });
        return true;
      case 'volunteer-new-clients':
        this.takingNew = command.take;
        this.run?.relay?.engine.takeNewClients(command.take);
        return true;
      default:
        return false;
    }
  }

  shutdown(): void {
    this.stop({ status: 'off' });
  }

  private stop(final: VolunteerEngineState | undefined): void {
    const run = this.run;
    this.run = undefined;
    if (run) {
      run.watch?.close();
      this.stopRelay(run);
    }
    if (final) this.setState(final);
  }

  private async start(command: StartCommand): Promise<void> {
    this.stop(undefined);
    if (command.takeNewClients !== undefined) this.takingNew = command.takeNewClients;
    const run: VolunteerRun = { command };
    this.run = run;
    this.setState({ status: 'connecting' });
    if (command.pauseOnBattery || command.pauseOnMetered) {
      let source: ConditionSource | undefined;
      try {
        source = await this.options.conditions();
      } catch (error) {
        // The browser would not tell after all: volunteer as if it had not been asked, and say why in the log.
        console.warn('underpass: battery and network conditions are unknown', error);
      }
      if (this.run !== run) return;
      if (source) {
        const watch = new PauseWatch({
          source,
          wanted: { onBattery: command.pauseOnBattery, metered: command.pauseOnMetered },
          clock: this.options.clock ?? systemClock,
        });
        run.watch = watch;
        watch.on('change', (reason) => {
          if (this.run === run) this.onPauseChange(run, reason);
        });
        if (watch.reason) {
          this.setState({ status: 'paused', code: watch.reason });
          return;
        }
      }
    }
    await this.startRelay(run);
  }

  /**
   * A pause closes the relay at once, its clients' circuits with it: they rebuild through another volunteer
   * right away (the broker tells them their link closed), as when a volunteer turns off. Draining instead
   * would wait for nothing: a client's path stays up for as long as its user keeps Protect on.
   */
  private onPauseChange(run: VolunteerRun, reason: PauseReason | undefined): void {
    if (reason) {
      this.stopRelay(run);
      this.setState({ status: 'paused', code: reason });
    } else if (!run.relay) {
      void this.startRelay(run);
    }
  }

  private stopRelay(run: VolunteerRun): void {
    const relay = run.relay;
    run.relay = undefined;
    if (!relay) return;
    clearInterval(relay.statsTimer);
    // What the relay carried since the last report still counts (month's usage, history).
    this.sendStats(relay);
    safely(() => relay.engine.stop());
  }

  private async startRelay(run: VolunteerRun): Promise<void> {
    const { command } = run;
    const signaling = new ReconnectingSignaling({
      url: command.signalingUrl,
      WebSocket: this.options.WebSocket,
      hello: { role: 'relay', capacity: command.capacity },
    });
    const engine = new VolunteerEngine({
      signaling,
      createPeer: this.options.createPeer,
      capacity: command.capacity,
      ...(command.bandwidthBytesPerSec > 0 ? { bandwidthBytesPerSec: command.bandwidthBytesPerSec } : {}),
    });
    engine.takeNewClients(this.takingNew);
    const relay: RelayRun = { engine };
    run.relay = relay;
    const current = () => this.run === run && run.relay === relay;
    this.setState({ status: 'connecting' });
    // One client's link failing is that client's problem; the relay keeps serving the others.
    engine.on('error', (error) => console.warn('underpass: a client link failed', error.code, error.message));
    signaling.on('state', (state) => {
      // Until start() is done, it owns the outcome (a wrong address is an error at once).
      if (!current() || !relay.started) return;
      this.onSignalingState(state);
    });
    // Polled rather than pushed: the relay counts bytes on every cell but announces only links coming and going.
    relay.statsTimer = setInterval(() => {
      if (current()) this.sendStats(relay);
    }, VOLUNTEER_STATS_INTERVAL_MS);
    try {
      await engine.start();
      if (!current()) return;
      relay.started = true;
      // Usually 'connected'; it may already have been lost again (then shown as reconnecting).
      const now = signaling.state;
      if (now.status === 'connected' || now.status === 'connecting') this.setState({ status: 'on' });
      else this.onSignalingState(now);
    } catch (error) {
      if (current()) this.stop({ status: 'error', ...toSwitchError(error, 'volunteer-failed') });
    }
  }

  private sendStats(relay: RelayRun): void {
    const stats = statsToWire(relay.engine.stats());
    if (relay.lastSent && sameStats(relay.lastSent, stats)) return;
    relay.lastSent = stats;
    this.options.emit({ target: 'background', type: 'volunteer-stats', stats });
  }

  private onSignalingState(state: SignalingConnectionState): void {
    switch (state.status) {
      case 'connected':
        this.setState({ status: 'on' });
        return;
      case 'reconnecting':
        this.setState({
          status: 'reconnecting',
          attempt: Math.min(state.attempt, 1_000_000),
          nextInMs: Math.min(Math.round(state.nextInMs), 3_600_000),
          reason: truncateReason(state.reason),
        });
        return;
      case 'stopped':
        // Only a refusal that retrying cannot fix (or our own close, which has no code) stops the loop.
        if (state.code === undefined) return;
        this.stop({
          status: 'error',
          ...switchError(
            state.code,
            `The signaling server refused the relay: ${state.reason ?? state.code}`,
            'signaling-closed',
          ),
        });
        return;
      case 'connecting':
        return;
    }
  }

  private setState(state: VolunteerEngineState): void {
    this.current = state;
    this.options.emit({ target: 'background', type: 'volunteer-state', state });
  }
}

function statsToWire(stats: VolunteerStats): VolunteerStats {
  const { clientsNow, circuitsTotal, bytesFromClients, bytesToClients, helped24h, helpedTotal, capacity } =
    stats;
  return { clientsNow, circuitsTotal, bytesFromClients, bytesToClients, helped24h, helpedTotal, capacity };
}

function sameStats(a: VolunteerStats, b: VolunteerStats): boolean {
  return (
    a.clientsNow === b.clientsNow &&
    a.circuitsTotal === b.circuitsTotal &&
    a.bytesFromClients === b.bytesFromClients &&
    a.bytesToClients === b.bytesToClients &&
    a.helped24h === b.helped24h &&
    a.helpedTotal === b.helpedTotal
  );
}
