import { ProtectSwitch } from '../features/protect/protect-switch';
import type { ProtectInfo } from '../features/protect/protect-messages';
import { VolunteerSwitch } from '../features/volunteer/volunteer-switch';
import { ZERO_VOLUNTEER_STATS, type VolunteerStats } from '../features/volunteer/volunteer-messages';
import type { VolunteerUsage } from '../features/volunteer/volunteer-usage';
import { parseHistory, type VolunteerHistory } from '../features/volunteer/volunteer-history';
import { CompanionPort, type NativePortLike } from '../lib/companion-port';
import type { EngineChannel } from '../lib/engine-channel';
import type { EngineEvent, EngineStatus, OffscreenCommand, SwitchName, SwitchState } from '../lib/messages';
import type { Pairing } from '@underpass/shared/data-port';
import type { ProxyControl } from '../lib/proxy-control';
import type { BlockRuleInput, ProxyRuleInput } from '../lib/proxy-rules';
import { SerialQueue } from '../lib/serial-queue';
import { DEFAULT_SETTINGS, type Settings } from '../lib/settings';
import type { Wanted } from '../lib/store';
import { SwitchRunner } from '../lib/switch-runner';
import type { ManualClock } from '../../test/manual-clock';

/**
 * The background's switches wired as background.ts wires them, around fakes of what they drive: an engines'
 * host that records commands, a proxy that records calls, a store in memory, and a native companion port
 * that says `ready` or fails like a missing host.
 */

const READY = { type: 'ready', version: 1, socksPort: 1080, dataPort: 4000, secret: 's'.repeat(32) };
const NOTHING_RUNNING: EngineStatus = {
  protect: { status: 'off' },
  volunteer: { status: 'off' },
  downloads: { status: 'off' },
};

/** How a companion started through native messaging answers: ready, not installed, or dying before ready. */
export type CompanionBehaviour = 'ready' | 'missing' | 'exits';

export type HarnessOptions = {
  companion?: CompanionBehaviour;
  /** Drives the companion's restart timers; without it the system clock. */
  clock?: ManualClock;
  pairing?: Pairing;
  settings?: Partial<Settings>;
  /** What the engines' host answers to `status` (a surviving offscreen document after a worker restart). */
  engines?: EngineStatus;
  /** What the user asked for before this worker started. */
  wanted?: Wanted;
  /** Wall-clock time, for the month the volunteer's usage counts into and the history's days. */
  now?: () => number;
  /** Drives the volunteer history's write timer. */
  timers?: ManualClock;
  /** What storage holds for the volunteer's history before the worker starts (any shape: it is read back). */
  history?: unknown;
};

export function switchHarness(options: HarnessOptions = {}) {
  let companionSays: CompanionBehaviour = options.companion ?? 'ready';
  const commands: OffscreenCommand[] = [];
  let emit: (event: EngineEvent) => void = () => {};
  let releases = 0;
  const channel: EngineChannel = {
    async send(command) {
      commands.push(command);
      return { ok: true, status: options.engines ?? NOTHING_RUNNING };
    },
    async release() {
      releases += 1;
    },
    onEvent(listener) {
      emit = listener;
    },
  };
  const proxyCalls: (ProxyRuleInput | 'clear' | { block: BlockRuleInput })[] = [];
  const pathUpCalls: boolean[] = [];
  const proxy: ProxyControl = {
    async apply(input) {
      proxyCalls.push(input);
      return { ok: true };
    },
    async pathUp(up) {
      pathUpCalls.push(up);
    },
    async block(rules) {
      proxyCalls.push({ block: rules });
    },
    async clear() {
      proxyCalls.push('clear');
    },
  };
  const states: Record<SwitchName, SwitchState[]> = { protect: [], volunteer: [], downloads: [] };
  let wanted: Wanted = options.wanted ?? { protect: false, volunteer: false, downloads: false };
  let stats: VolunteerStats | undefined;
  let usage: VolunteerUsage | undefined;
  let history: unknown = options.history;
  const infos: ProtectInfo[] = [];
  let settings: Settings = {
    ...DEFAULT_SETTINGS,
    routeLoopback: true,
    ...options.settings,
    ...(options.pairing ? { pairing: options.pairing } : {}),
  };
  const store = {
    loadSettings: async (): Promise<Settings> => settings,
    loadWanted: async () => wanted,
    saveWanted: async (name: SwitchName, on: boolean) => {
      wanted = { ...wanted, [name]: on };
    },
    loadSwitchState: async (name: SwitchName) => states[name].at(-1) ?? { status: 'off' as const },
    saveSwitchState: async (name: SwitchName, state: SwitchState) => {
      states[name].push(state);
    },
    loadVolunteerStats: async () => stats ?? ZERO_VOLUNTEER_STATS,
    saveVolunteerStats: async (next: VolunteerStats) => {
      stats = next;
    },
    saveProtectInfo: async (info: ProtectInfo) => {
      infos.push(info);
    },
    loadUsage: async () => usage,
    saveUsage: async (next: VolunteerUsage) => {
      usage = next;
    },
    // Stored as it would be, and read back through the same validation as the real store.
    loadHistory: async (epochMs: number) => parseHistory(history, epochMs),
    saveHistory: async (next: VolunteerHistory) => {
      history = structuredClone(next);
    },
  };
  const ports: { disconnected: boolean; closeFromHost: () => void }[] = [];
  const createCompanion = () => {
    const behaviour = companionSays;
    // Each companion listens on ports of its own, as a real one started again does.
    const n = ports.length;
    const ready = { ...READY, socksPort: READY.socksPort + n, dataPort: READY.dataPort + n };
    const listeners: { message: ((m: unknown) => void)[]; disconnect: (() => void)[] } = {
      message: [],
      disconnect: [],
    };
    const record = {
      disconnected: false,
      closeFromHost: () => listeners.disconnect.forEach((listener) => listener()),
    };
    ports.push(record);
    const port: NativePortLike = {
      postMessage() {},
      disconnect() {
        record.disconnected = true;
      },
      onMessage: { addListener: (l) => listeners.message.push(l) },
      onDisconnect: { addListener: (l) => listeners.disconnect.push(l) },
    };
    // The host answers once the port's listeners are in place, as a real one does a process start later.
    const answer = () => {
      if (behaviour === 'ready') for (const l of listeners.message) l(ready);
      else for (const l of listeners.disconnect) l();
    };
    return new CompanionPort({
      connect: () => {
        queueMicrotask(answer);
        return port;
      },
      lastError: () =>
        behaviour === 'missing'
          ? 'Specified native messaging host not found.'
          : behaviour === 'exits'
            ? 'Native host has exited.'
            : undefined,
      extensionId: 'x'.repeat(32),
    });
  };
  const queue = new SerialQueue();
  const protect = new ProtectSwitch({
    channel,
    proxy,
    createCompanion,
    store,
    queue,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const volunteer = new VolunteerSwitch({
    channel,
    store,
    ...(options.now ? { now: options.now } : {}),
    ...(options.timers ? { timers: options.timers } : {}),
  });
  const runner = new SwitchRunner({ switches: [protect, volunteer], channel, store, queue });
  const replaceSettings = (next: Settings) => {
    settings = next;
    return runner.settingsChanged(settings);
  };
  return {
    runner,
    protect,
    volunteer,
    /** The types of the commands sent to the engines' host, in order. */
    sent: () => commands.map((command) => command.type),
    commands,
    /** Saves settings as the options page does, and tells the runner as the storage watch does. */
    changeSettings: (change: Partial<Settings>) => replaceSettings({ ...settings, ...change }),
    /** The same, for settings that lose a field (an unpairing). */
    replaceSettings,
    proxyCalls,
    pathUpCalls,
    states,
    ports,
    /** How the next companions started answer (uninstalled, say). */
    setCompanion: (behaviour: CompanionBehaviour) => {
      companionSays = behaviour;
    },
    infos,
    releases: () => releases,
    stats: () => stats,
    usage: () => usage,
    /** The volunteer history as stored (raw). */
    history: () => history,
    /** Delivers an engine event as the engines' host would, and waits until the background has handled it. */
    emit: async (event: EngineEvent) => {
      emit(event);
      await queue.run(async () => {});
    },
    /** Waits until everything queued so far (e.g. a companion's close) has been handled. */
    settled: () => queue.run(async () => {}),
  };
}

/** The engines' host joined the `n`th companion's data socket (0: the first one started). */
export function joined(n = 0): EngineEvent {
  return {
    target: 'background',
    type: 'protect-companion-link',
    link: { status: 'joined', dataPort: READY.dataPort + n },
  };
}

/** The engines' host lost the `n`th companion's data socket. */
export function dataSocketLost(n = 0): EngineEvent {
  return {
    target: 'background',
    type: 'protect-companion-link',
    link: {
      status: 'lost',
      dataPort: READY.dataPort + n,
      code: 'companion-closed',
      reason: 'The connection to the companion closed.',
    },
  };
}

export const PROTECTED: EngineEvent = {
  target: 'background',
  type: 'protect-state',
  state: {
    status: 'protected',
    path: { mode: 'two-hop', relayPeerId: 'relay1', exitPeerId: 'exit1', exitKey: 'k' },
  },
};
