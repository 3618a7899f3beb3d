import { describe, expect, it } from 'vitest';
import { BackgroundController, type ControllerStore } from '../lib/background-controller';
import { CompanionPort, type NativePortLike } from '../lib/companion-port';
import type { EngineChannel } from '../lib/engine-channel';
import {
  ZERO_VOLUNTEER_STATS,
  type EngineEvent,
  type OffscreenCommand,
  type ProtectInfo,
  type SwitchName,
  type SwitchState,
  type VolunteerStatsWire,
} from '../lib/messages';
import type { ProxyControl } from '../lib/proxy-control';
import type { ProxyRuleInput } from '../lib/proxy-rules';
import type { Pairing } from '../lib/pairing-code';
import { DEFAULT_SETTINGS, type Settings } from '../lib/settings';
import type { VolunteerUsage, Wanted } from '../lib/store';

const READY = { type: 'ready', version: 1, socksPort: 1080, dataPort: 4000, secret: 's'.repeat(32) };
const flush = () => new Promise((resolve) => setTimeout(resolve, 0));

function harness(
  companionSays: 'ready' | 'missing',
  pairing?: Pairing,
  settings: Partial<Settings> = {},
  companionLingerMs = 0,
) {
  const sent: OffscreenCommand['type'][] = [];
  const commands: OffscreenCommand[] = [];
  let emit: (event: EngineEvent) => void = () => {};
  const channel: EngineChannel = {
    async send(command) {
      sent.push(command.type);
      commands.push(command);
      return { ok: true, status: { protect: { status: 'off' }, volunteer: { status: 'off' } } };
    },
    async release() {},
    onEvent(listener) {
      emit = listener;
    },
  };
  const proxyCalls: (ProxyRuleInput | 'clear')[] = [];
  const proxy: ProxyControl = {
    async apply(input) {
      proxyCalls.push(input);
      return { ok: true };
    },
    async clear() {
      proxyCalls.push('clear');
    },
  };
  const states: Record<SwitchName, SwitchState[]> = { protect: [], volunteer: [] };
  let wanted: Wanted = { protect: false, volunteer: false };
  let stats: VolunteerStatsWire | undefined;
  let usage: VolunteerUsage | undefined;
  const infos: ProtectInfo[] = [];
  const store: ControllerStore = {
    loadSettings: async () => ({
      ...DEFAULT_SETTINGS,
      routeLoopback: true,
      ...settings,
      ...(pairing ? { pairing } : {}),
    }),
    loadWanted: async () => wanted,
    saveWanted: async (name, on) => {
      wanted = { ...wanted, [name]: on };
    },
    loadSwitchState: async (name) => states[name].at(-1) ?? { status: 'off' },
    saveSwitchState: async (name, state) => {
      states[name].push(state);
    },
    loadVolunteerStats: async () => stats ?? ZERO_VOLUNTEER_STATS,
    saveVolunteerStats: async (s) => {
      stats = s;
    },
    saveProtectInfo: async (info) => {
      infos.push(info);
    },
    loadUsage: async () => usage,
    saveUsage: async (u) => {
      usage = u;
    },
  };
  const ports: { disconnected: boolean }[] = [];
  const createCompanion = () => {
    const listeners: { message: ((m: unknown) => void)[]; disconnect: (() => void)[] } = {
      message: [],
      disconnect: [],
    };
    const record = { disconnected: false };
    ports.push(record);
    const port: NativePortLike = {
      postMessage() {},
      disconnect() {
        record.disconnected = true;
      },
      onMessage: { addListener: (l) => listeners.message.push(l) },
      onDisconnect: { addListener: (l) => listeners.disconnect.push(l) },
    };
    setTimeout(() => {
      if (companionSays === 'ready') for (const l of listeners.message) l(READY);
      else for (const l of listeners.disconnect) l();
    }, 0);
    return new CompanionPort({
      connect: () => port,
      lastError: () =>
        companionSays === 'missing' ? 'Specified native messaging host not found.' : undefined,
      extensionId: 'x'.repeat(32),
    });
  };
  const controller = new BackgroundController({
    channel,
    proxy,
    createCompanion,
    store,
    companionLingerMs,
  });
  return {
    controller,
    sent,
    commands,
    proxyCalls,
    states,
    ports,
    emit: (event: EngineEvent) => emit(event),
    stats: () => stats,
    usage: () => usage,
    infos,
  };
}

const PROTECTED: EngineEvent = {
  target: 'background',
  type: 'protect-state',
  state: {
    status: 'protected',
    path: { mode: 'two-hop', relayPeerId: 'relay1', exitPeerId: 'exit1', exitKey: 'k' },
  },
};

describe('BackgroundController: Protect', () => {
  it('sets the proxy only once the path is up, and clears it when turned off', async () => {
    const h = harness('ready');
    expect(await h.controller.setSwitch('protect', true)).toEqual({ ok: true });
    expect(h.sent).toEqual(['protect-start']);
    expect(h.proxyCalls).toEqual([]);
    expect(h.controller.state('protect').status).toBe('connecting');

    h.emit(PROTECTED);
    await flush();
    expect(h.proxyCalls).toEqual([
      {
        socksPort: 1080,
        dataPort: 4000,
        signalingUrl: DEFAULT_SETTINGS.signalingUrl,
        routeLoopback: true,
        bypassSites: [],
      },
    ]);
    expect(h.controller.state('protect')).toMatchObject({ status: 'on' });

    await h.controller.setSwitch('protect', false);
    expect(h.proxyCalls.at(-1)).toBe('clear');
    expect(h.ports[0]?.disconnected).toBe(true);
    expect(h.controller.state('protect')).toEqual({ status: 'off' });
  });

  it('keeps a native companion warm after off, and reuses it when turned on again', async () => {
    const h = harness('ready', undefined, {}, 60_000);
    await h.controller.setSwitch('protect', true);
    h.emit(PROTECTED);
    await flush();
    await h.controller.setSwitch('protect', false);
    expect(h.proxyCalls.at(-1)).toBe('clear');
    expect(h.ports).toHaveLength(1);
    expect(h.ports[0]?.disconnected).toBe(false);
    await h.controller.setSwitch('protect', true);
    expect(h.ports).toHaveLength(1);
    expect(h.commands.at(-1)).toMatchObject({ type: 'protect-start', companion: { dataPort: 4000 } });
    h.emit(PROTECTED);
    await flush();
    expect(h.controller.state('protect')).toMatchObject({ status: 'on' });
  });

  it('shows a missing companion as an error and touches nothing else', async () => {
    const h = harness('missing');
    await h.controller.setSwitch('protect', true);
    expect(h.controller.state('protect')).toMatchObject({ status: 'error', code: 'companion-missing' });
    expect(h.sent).toEqual([]);
    expect(h.proxyCalls).toEqual([]);
  });

  it('keeps the proxy (fails closed) when the engine gives up after protecting', async () => {
    const h = harness('ready');
    await h.controller.setSwitch('protect', true);
    h.emit(PROTECTED);
    await flush();
    h.emit({
      target: 'background',
      type: 'protect-state',
      state: { status: 'error', code: 'x', message: 'boom' },
    });
    await flush();
    expect(h.proxyCalls.filter((c) => c === 'clear')).toEqual([]);
    const state = h.controller.state('protect');
    expect(state).toMatchObject({ status: 'error', code: 'x' });
    expect(state.status === 'error' && state.reason).toContain('blocked until you turn Protect off');
  });

  it('keeps the proxy while a lost path is rebuilt, says so, and shows the blocked count', async () => {
    const h = harness('ready');
    await h.controller.setSwitch('protect', true);
    h.emit(PROTECTED);
    await flush();
    expect(h.infos.at(-1)?.path).toMatchObject({ relayPeerId: 'relay1', exitPeerId: 'exit1' });
    h.emit({
      target: 'background',
      type: 'protect-state',
      state: { status: 'reconnecting', message: 'the first hop closed' },
    });
    const stats = {
      bytesUp: 10,
      bytesDown: 20,
      streamsOpen: 0,
      blocked: 3,
      blockedWhileReconnecting: 3,
    };
    h.emit({ target: 'background', type: 'protect-stats', stats });
    await flush();
    expect(h.controller.state('protect').status).toBe('reconnecting');
    expect(h.proxyCalls.filter((c) => c === 'clear')).toEqual([]);
    expect(h.infos.at(-1)).toEqual({ stats });
    h.emit(PROTECTED);
    await flush();
    expect(h.controller.state('protect').status).toBe('on');
    expect(h.proxyCalls.length).toBe(1);
  });

  it('ignores engine events when Protect is off', async () => {
    const h = harness('ready');
    h.emit(PROTECTED);
    await flush();
    expect(h.proxyCalls).toEqual([]);
    expect(h.sent).toEqual(['protect-stop']);
  });

  it('does not retry a switch that ended in an error on resume', async () => {
    const h = harness('missing');
    await h.controller.setSwitch('protect', true);
    const before = h.ports.length;
    await h.controller.resume();
    expect(h.ports.length).toBe(before);
  });
});

describe('BackgroundController: Protect with a paired companion', () => {
  const PAIRING: Pairing = { socksPort: 1090, dataPort: 4100, secret: 'p'.repeat(43) };
  const engineError = (code: string): EngineEvent => ({
    target: 'background',
    type: 'protect-state',
    state: { status: 'error', code, message: 'raw' },
  });

  it('uses the pairing instead of native messaging, and the same data path and proxy', async () => {
    const h = harness('missing', PAIRING);
    await h.controller.setSwitch('protect', true);
    expect(h.ports).toEqual([]);
    expect(h.commands[0]).toMatchObject({
      type: 'protect-start',
      companion: { dataPort: 4100, secret: PAIRING.secret },
    });
    h.emit(PROTECTED);
    await flush();
    expect(h.proxyCalls).toEqual([
      {
        socksPort: 1090,
        dataPort: 4100,
        signalingUrl: DEFAULT_SETTINGS.signalingUrl,
        routeLoopback: true,
        bypassSites: [],
      },
    ]);
    expect(h.controller.state('protect')).toMatchObject({ status: 'on' });
    await h.controller.setSwitch('protect', false);
    expect(h.controller.state('protect')).toEqual({ status: 'off' });
  });

  it('says the paired companion is not running when its data port does not answer', async () => {
    const h = harness('ready', PAIRING);
    await h.controller.setSwitch('protect', true);
    h.emit(engineError('companion-unreachable'));
    await flush();
    const state = h.controller.state('protect');
    expect(state).toMatchObject({ status: 'error', code: 'paired-companion-not-running' });
    expect(state.status === 'error' && state.reason).toContain(
      'The companion you paired is not running (nothing answers on 127.0.0.1:4100)',
    );
    expect(state.status === 'error' && state.reason).toContain('underpass-companion serve');
    expect(h.proxyCalls).toEqual(['clear']);
  });

  it('says a refused secret means a code from an earlier run', async () => {
    const h = harness('ready', PAIRING);
    await h.controller.setSwitch('protect', true);
    h.emit(engineError('companion-unauthorized'));
    await flush();
    expect(h.controller.state('protect')).toMatchObject({ code: 'paired-companion-refused' });
  });

  it('passes failures that are not about the companion through unchanged', async () => {
    const h = harness('ready', PAIRING);
    await h.controller.setSwitch('protect', true);
    h.emit(engineError('no-exit'));
    await flush();
    expect(h.controller.state('protect')).toEqual({ status: 'error', code: 'no-exit', reason: 'raw' });
  });
});

describe('BackgroundController: Volunteer', () => {
  it('goes on when the engine says so and stores its counters', async () => {
    const h = harness('ready');
    await h.controller.setSwitch('volunteer', true);
    expect(h.sent).toEqual(['volunteer-start']);
    h.emit({ target: 'background', type: 'volunteer-state', state: { status: 'on' } });
    const stats = {
      clientsNow: 1,
      circuitsTotal: 2,
      bytesFromClients: 3,
      bytesToClients: 4,
      helped24h: 1,
      capacity: 4,
    };
    h.emit({ target: 'background', type: 'volunteer-stats', stats });
    await flush();
    expect(h.controller.state('volunteer').status).toBe('on');
    expect(h.stats()).toEqual(stats);
    expect(h.usage()?.bytes).toBe(7);
    await h.controller.setSwitch('volunteer', false);
    expect(h.sent.at(-1)).toBe('volunteer-stop');
    expect(h.controller.state('volunteer')).toEqual({ status: 'off' });
  });

  it('pauses at the monthly data cap and stays paused when turned on again', async () => {
    const h = harness('ready', undefined, { volunteerMonthlyMiB: 1 });
    await h.controller.setSwitch('volunteer', true);
    h.emit({ target: 'background', type: 'volunteer-state', state: { status: 'on' } });
    const stats = {
      clientsNow: 1,
      circuitsTotal: 1,
      bytesFromClients: 100_000,
      bytesToClients: 1_000_000,
      helped24h: 1,
      capacity: 4,
    };
    h.emit({ target: 'background', type: 'volunteer-stats', stats });
    await flush();
    expect(h.controller.state('volunteer')).toMatchObject({ status: 'paused', code: 'monthly-cap' });
    expect(h.sent.at(-1)).toBe('volunteer-stop');
    await h.controller.setSwitch('volunteer', true);
    expect(h.controller.state('volunteer')).toMatchObject({ status: 'paused' });
    expect(h.sent.filter((c) => c === 'volunteer-start')).toHaveLength(1);
  });
});
