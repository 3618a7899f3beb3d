import type { EngineChannel } from './engine-channel';
import type { FeatureSwitch } from './feature-switch';
import type { SwitchAction, SwitchName, SwitchState, UiReply } from './messages';
import type { Settings } from './settings';
import type { SerialQueue } from './serial-queue';
import { toSwitchError } from './switch-error';
import type { Wanted } from './store';

export type RunnerStore = {
  loadWanted(): Promise<Wanted>;
  saveWanted(name: SwitchName, on: boolean): Promise<void>;
  loadSwitchState(name: SwitchName): Promise<SwitchState>;
};

export type SwitchRunnerOptions = {
  switches: readonly FeatureSwitch[];
  channel: EngineChannel;
  store: RunnerStore;
  /** The same queue the switches schedule their own follow-ups on (a companion that closed, say). */
  queue: SerialQueue;
};

const HOST_LOST = {
  status: 'error',
  code: 'engine-host-lost',
  reason: 'The WebRTC engines stopped unexpectedly.',
} as const;

/**
 * The background's switchboard: it takes the user's commands, the engines' events and the watchdog's checks,
 * runs them one at a time through the queue, routes each to its feature's switch, and lets the engines' host
 * go when no switch needs it. It knows no feature by name.
 */
export class SwitchRunner {
  private readonly byName: ReadonlyMap<SwitchName, FeatureSwitch>;

  constructor(private readonly options: SwitchRunnerOptions) {
    this.byName = new Map(options.switches.map((s) => [s.name, s]));
    options.channel.onEvent((event) => {
      void this.serialized(async () => {
        for (const feature of options.switches) await feature.onEngineEvent(event);
      });
    });
  }

  setSwitch(name: SwitchName, on: boolean): Promise<UiReply> {
    const feature = this.byName.get(name);
    if (!feature) return Promise.resolve({ ok: false, code: 'bad-command', reason: `no switch ${name}` });
    return this.serialized(async () => {
      await this.options.store.saveWanted(name, on);
      await (on ? feature.start() : feature.stop({ status: 'off' }));
      return { ok: true } as const;
    }).catch((error: unknown) => ({ ok: false, ...toSwitchError(error, 'internal') }) as const);
  }

  /** An action on a running feature (Protect's "New path"); one a feature does not know is refused. */
  act(name: SwitchName, action: SwitchAction): Promise<UiReply> {
    const feature = this.byName.get(name);
    if (!feature?.act)
      return Promise.resolve({ ok: false, code: 'bad-command', reason: `${name} has no ${action}` });
    return this.serialized(async () => {
      await feature.act?.(action);
      return { ok: true } as const;
    }).catch((error: unknown) => ({ ok: false, ...toSwitchError(error, 'internal') }) as const);
  }

  /** The settings changed (the options page saved them): each feature puts in place what concerns it. */
  settingsChanged(settings: Settings): Promise<void> {
    return this.serialized(async () => {
      for (const feature of this.options.switches) await feature.applySettings?.(settings);
    });
  }

  /** Brings a (re)started worker in line with what the user asked for (see FeatureSwitch.resume). */
  resume(): Promise<void> {
    return this.serialized(async () => {
      const { store, channel } = this.options;
      const wanted = await store.loadWanted();
      const status = await channel.send({ target: 'offscreen', type: 'status' }, { create: false });
      const engines = status.ok ? status.status : undefined;
      for (const feature of this.options.switches) {
        if (feature.running) continue;
        const stored = await store.loadSwitchState(feature.name);
        await feature.resume({ wanted: wanted[feature.name], stored, engines });
      }
    });
  }

  /** Periodic check (an alarm): if the engines' host vanished (crash, killed), say so instead of showing "on". */
  checkHost(): Promise<void> {
    return this.serialized(async () => {
      // Tasks run one at a time, so no switch is half-started here: running means its engine should be up.
      const running = this.options.switches.filter((feature) => feature.running);
      if (running.length === 0) return;
      const status = await this.options.channel.send(
        { target: 'offscreen', type: 'status' },
        { create: false },
      );
      if (status.ok) return;
      for (const feature of running) await feature.stop(HOST_LOST);
    });
  }

  /** Runs a task in the queue, then closes the engines' document if nothing uses it any more. */
  private serialized<T>(task: () => Promise<T>): Promise<T> {
    return this.options.queue.run(async () => {
      try {
        return await task();
      } finally {
        if (!this.options.switches.some((feature) => feature.running)) await this.options.channel.release();
      }
    });
  }
}
