import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../lib/messages';
import type { Pairing } from '@underpass/shared/data-port';
import { DEFAULT_SETTINGS } from '../lib/settings';
import { NO_REFUSALS } from '../features/protect/protect-messages';
import { ManualClock } from '../../test/manual-clock';
import { dataSocketLost, joined, PROTECTED, switchHarness } from './switch-harness';

const PROXY_TO_COMPANION = {
  socksPort: 1080,
  dataPort: 4000,
  signalingUrl: DEFAULT_SETTINGS.signalingUrl,
  routeLoopback: true,
  bypassSites: [],
};

const BLOCK_RULES = {
  signalingUrl: DEFAULT_SETTINGS.signalingUrl,
  routeLoopback: true,
  bypassSites: [],
};

describe('ProtectSwitch', () => {
  it('starts the path and the companion together, sets the proxy only once both are up, and clears it when turned off', async () => {
    const h = switchHarness();
    expect(await h.runner.setSwitch('protect', true)).toEqual({ ok: true });
    expect(h.sent()).toEqual(['protect-start', 'protect-companion']);
    expect(h.commands[1]).toMatchObject({ companion: { dataPort: 4000, secret: 's'.repeat(32) } });
    expect(h.proxyCalls).toEqual([]);
    expect(h.protect.state).toEqual({ status: 'connecting', detail: 'Finding a path' });

    await h.emit(PROTECTED);
    // The path alone is not enough: the companion's data socket has not joined it yet.
    expect(h.proxyCalls).toEqual([]);
    expect(h.protect.state.status).toBe('connecting');
    await h.emit(joined());
    expect(h.proxyCalls).toEqual([PROXY_TO_COMPANION]);
    expect(h.protect.state).toMatchObject({ status: 'on' });

    await h.runner.setSwitch('protect', false);
    expect(h.proxyCalls.at(-1)).toBe('clear');
    expect(h.ports[0]?.disconnected).toBe(true);
    expect(h.protect.state).toEqual({ status: 'off' });
  });

  it('shows a missing companion as an error and never points the proxy anywhere', async () => {
    const h = switchHarness({ companion: 'missing' });
    await h.runner.setSwitch('protect', true);
    expect(h.protect.state).toMatchObject({ status: 'error', code: 'companion-missing' });
    expect(h.sent()).toEqual(['protect-start', 'protect-stop']);
    expect(h.proxyCalls).toEqual(['clear']);
    expect(h.protect.running).toBe(false);
  });

  it('keeps the proxy (fails closed) when the engine gives up after protecting', async () => {
    const h = switchHarness();
    await h.runner.setSwitch('protect', true);
    await h.emit(joined());
    await h.emit(PROTECTED);
    await h.emit({
      target: 'background',
      type: 'protect-state',
      state: { status: 'error', code: 'no-exit-available', reason: 'boom' },
    });
    expect(h.proxyCalls.filter((c) => c === 'clear')).toEqual([]);
    const state = h.protect.state;
    expect(state).toMatchObject({ status: 'error', code: 'no-exit-available' });
    expect(state.status === 'error' && state.reason).toContain('blocked until you turn Protect off');
  });

  it('keeps the proxy while a lost path is rebuilt, says so, and shows the blocked count', async () => {
    const h = switchHarness();
    await h.runner.setSwitch('protect', true);
    await h.emit(joined());
    await h.emit(PROTECTED);
    expect(h.infos.at(-1)?.path).toMatchObject({ relayPeerId: 'relay1', exitPeerId: 'exit1' });
    await h.emit({
      target: 'background',
      type: 'protect-state',
      state: { status: 'reconnecting', reason: 'the first hop closed' },
    });
    const stats = {
      bytesUp: 10,
      bytesDown: 20,
      streamsOpen: 0,
      blocked: 3,
      blockedWhileReconnecting: 3,
      refusals: NO_REFUSALS,
    };
    await h.emit({ target: 'background', type: 'protect-stats', stats });
    expect(h.protect.state.status).toBe('reconnecting');
    expect(h.proxyCalls.filter((c) => c === 'clear')).toEqual([]);
    expect(h.infos.at(-1)).toEqual({ stats });
    await h.emit(PROTECTED);
    expect(h.protect.state.status).toBe('on');
    expect(h.proxyCalls.length).toBe(1);
  });

  it('tells the proxy when the path is up and when a new one is built, before the engine makes its links', async () => {
    const h = switchHarness();
    await h.runner.setSwitch('protect', true);
    await h.emit(joined());
    expect(h.pathUpCalls).toEqual([]);
    await h.emit(PROTECTED);
    expect(h.pathUpCalls.at(-1)).toBe(true);
    await h.emit({
      target: 'background',
      type: 'protect-state',
      state: { status: 'reconnecting', reason: 'the first hop closed' },
    });
    expect(h.pathUpCalls.at(-1)).toBe(false);
    await h.emit(PROTECTED);
    expect(h.pathUpCalls.at(-1)).toBe(true);

    // "New path": the proxy hears first, then the engine is asked for new links.
    const before = h.commands.length;
    await h.runner.act('protect', 'new-path');
    expect(h.pathUpCalls.at(-1)).toBe(false);
    expect(h.sent().slice(before)).toEqual(['protect-new-path']);
  });

  it('stops an engine that runs without a session, e.g. left over from a previous worker', async () => {
    const h = switchHarness();
    await h.emit(PROTECTED);
    expect(h.proxyCalls).toEqual([]);
    expect(h.sent()).toEqual(['protect-stop']);
  });

  it('does not retry a switch that ended in an error on resume', async () => {
    const h = switchHarness({ companion: 'missing' });
    await h.runner.setSwitch('protect', true);
    const before = h.ports.length;
    await h.runner.resume();
    expect(h.ports.length).toBe(before);
    expect(h.protect.state).toMatchObject({ status: 'error', code: 'companion-missing' });
  });

  it('rebuilds a wanted Protect from scratch on resume, stopping what the old worker left running', async () => {
    const h = switchHarness({
      wanted: { protect: true, volunteer: false, downloads: false },
      engines: {
        protect: { status: 'reconnecting', reason: 'worker gone' },
        volunteer: { status: 'off' },
        downloads: { status: 'off' },
      },
    });
    await h.runner.resume();
    expect(h.sent()).toEqual(['status', 'protect-stop', 'protect-start', 'protect-companion']);
    // Pages were blocked before anything else, then pointed at the new companion: never direct.
    expect(h.proxyCalls).toEqual([{ block: BLOCK_RULES }, PROXY_TO_COMPANION]);
    expect(h.protect.state).toMatchObject({ status: 'reconnecting' });
    expect(h.pathUpCalls.at(-1)).toBe(false);
    await h.emit(joined());
    await h.emit(PROTECTED);
    expect(h.protect.state).toMatchObject({ status: 'on' });
    expect(h.pathUpCalls.at(-1)).toBe(true);
  });

  it('keeps pages blocked when a Protect that comes back after a restart finds no companion', async () => {
    const h = switchHarness({
      companion: 'missing',
      wanted: { protect: true, volunteer: false, downloads: false },
    });
    await h.runner.resume();
    expect(h.proxyCalls).toEqual([{ block: BLOCK_RULES }]);
    const state = h.protect.state;
    expect(state).toMatchObject({ status: 'error', code: 'companion-missing' });
    expect(state.status === 'error' && state.reason).toContain('blocked until you turn Protect off');

    // The popup tries again (it watches for the companion to be installed): still blocked, never cleared.
    await h.runner.setSwitch('protect', true);
    expect(h.proxyCalls).toEqual([{ block: BLOCK_RULES }, { block: BLOCK_RULES }]);
    expect(h.protect.state).toMatchObject({ status: 'error', code: 'companion-missing', blocking: true });

    // A browser started again once more: still blocked, still the error, until the user turns Protect off.
    await h.runner.resume();
    expect(h.proxyCalls.filter((call) => call === 'clear')).toEqual([]);
    expect(h.proxyCalls.at(-1)).toEqual({ block: BLOCK_RULES });
    expect(h.protect.state).toMatchObject({ status: 'error', code: 'companion-missing' });
    await h.runner.setSwitch('protect', false);
    expect(h.proxyCalls.at(-1)).toBe('clear');
  });

  it('clears the proxy on resume when Protect is not wanted', async () => {
    const h = switchHarness();
    await h.runner.resume();
    expect(h.proxyCalls).toEqual(['clear']);
    expect(h.protect.state).toEqual({ status: 'off' });
    expect(h.releases()).toBe(1);
  });
});

describe('ProtectSwitch with a paired companion', () => {
  const PAIRING: Pairing = { socksPort: 1090, dataPort: 4100, secret: 'p'.repeat(43) };
  const engineError = (code: 'no-exit-available'): EngineEvent => ({
    target: 'background',
    type: 'protect-state',
    state: { status: 'error', code, reason: 'raw' },
  });
  /** The engines' host could not join (or lost) the paired companion's data socket. */
  const dataSocket = (
    code: 'companion-unreachable' | 'companion-unauthorized' | 'companion-closed',
  ): EngineEvent => ({
    target: 'background',
    type: 'protect-companion-link',
    link: { status: 'lost', dataPort: PAIRING.dataPort, code, reason: 'raw' },
  });

  it('uses the pairing instead of native messaging, and the same data path and proxy', async () => {
    const h = switchHarness({ companion: 'missing', pairing: PAIRING });
    await h.runner.setSwitch('protect', true);
    expect(h.ports).toEqual([]);
    expect(h.commands[1]).toMatchObject({
      type: 'protect-companion',
      companion: { dataPort: 4100, secret: PAIRING.secret },
    });
    await h.emit({
      target: 'background',
      type: 'protect-companion-link',
      link: { status: 'joined', dataPort: 4100 },
    });
    await h.emit(PROTECTED);
    expect(h.proxyCalls).toEqual([{ ...PROXY_TO_COMPANION, socksPort: 1090, dataPort: 4100 }]);
    expect(h.protect.state).toMatchObject({ status: 'on' });
    await h.runner.setSwitch('protect', false);
    expect(h.protect.state).toEqual({ status: 'off' });
  });

  it('says the paired companion is not running when its data port does not answer', async () => {
    const h = switchHarness({ pairing: PAIRING });
    await h.runner.setSwitch('protect', true);
    await h.emit(dataSocket('companion-unreachable'));
    const state = h.protect.state;
    expect(state).toMatchObject({ status: 'error', code: 'paired-companion-not-running' });
    expect(state.status === 'error' && state.reason).toContain(
      'The companion you paired is not running (nothing answers on 127.0.0.1:4100)',
    );
    expect(state.status === 'error' && state.reason).toContain('underpass-companion serve');
    expect(h.proxyCalls).toEqual(['clear']);
  });

  it('says a refused secret means a code from an earlier run', async () => {
    const h = switchHarness({ pairing: PAIRING });
    await h.runner.setSwitch('protect', true);
    await h.emit(dataSocket('companion-unauthorized'));
    expect(h.protect.state).toMatchObject({ code: 'paired-companion-refused' });
  });

  it('passes failures that are not about the companion through unchanged', async () => {
    const h = switchHarness({ pairing: PAIRING });
    await h.runner.setSwitch('protect', true);
    await h.emit(engineError('no-exit-available'));
    expect(h.protect.state).toEqual({ status: 'error', code: 'no-exit-available', reason: 'raw' });
  });
});

describe('ProtectSwitch when the companion dies while Protect is on', () => {
  /** Protect on through the first companion (socks 1080, data 4000). */
  async function protectedHarness(options: Parameters<typeof switchHarness>[0] = {}) {
    const clock = new ManualClock();
    const h = switchHarness({ ...options, clock });
    await h.runner.setSwitch('protect', true);
    await h.emit(joined(0));
    await h.emit(PROTECTED);
    expect(h.protect.state.status).toBe('on');
    return { h, clock };
  }
  const clears = (h: ReturnType<typeof switchHarness>) => h.proxyCalls.filter((c) => c === 'clear');

  it('keeps the proxy on the dead companion, starts a new one, points the proxy at it, and is on again once it joined', async () => {
    const { h, clock } = await protectedHarness();
    h.ports[0]?.closeFromHost();
    await h.settled();
    expect(h.protect.state.status).toBe('reconnecting');
    expect(h.protect.state.status === 'reconnecting' && h.protect.state.detail).toContain(
      'the companion stopped',
    );
    expect(h.proxyCalls).toEqual([PROXY_TO_COMPANION]);

    clock.advance(0);
    await h.settled();
    expect(h.ports.length).toBe(2);
    // Pointed at the new companion (one set, no clear) before its data socket is dialled.
    expect(h.proxyCalls).toEqual([
      PROXY_TO_COMPANION,
      { ...PROXY_TO_COMPANION, socksPort: 1081, dataPort: 4001 },
    ]);
    expect(h.commands.at(-1)).toMatchObject({ type: 'protect-companion', companion: { dataPort: 4001 } });
    expect(h.protect.state.status).toBe('reconnecting');

    await h.emit(joined(1));
    expect(h.protect.state).toMatchObject({ status: 'on' });
    // The path was never torn down: one start, no stop.
    expect(h.sent().filter((type) => type === 'protect-start' || type === 'protect-stop')).toEqual([
      'protect-start',
    ]);
    expect(clears(h)).toEqual([]);
  });

  it('starts it again when only its data socket closed, letting the old one go', async () => {
    const { h, clock } = await protectedHarness();
    await h.emit(dataSocketLost(0));
    expect(h.ports[0]?.disconnected).toBe(true);
    expect(h.protect.state.status).toBe('reconnecting');
    clock.advance(0);
    await h.settled();
    await h.emit(joined(1));
    expect(h.protect.state.status).toBe('on');
  });

  it('starts one companion when both its port and its data socket report the loss', async () => {
    const { h, clock } = await protectedHarness();
    h.ports[0]?.closeFromHost();
    await h.emit(dataSocketLost(0));
    clock.advance(0);
    await h.settled();
    expect(h.ports.length).toBe(2);
    // Late word about the first companion changes nothing once the second is up.
    await h.emit(joined(1));
    await h.emit(dataSocketLost(0));
    expect(h.protect.state.status).toBe('on');
    expect(h.ports.length).toBe(2);
  });

  it('ends in an error in words, proxy still set, when the companion was uninstalled', async () => {
    const { h, clock } = await protectedHarness();
    h.setCompanion('missing');
    h.ports[0]?.closeFromHost();
    await h.settled();
    clock.advance(0);
    await h.settled();
    const state = h.protect.state;
    expect(state).toMatchObject({ status: 'error', code: 'companion-missing' });
    expect(state.status === 'error' && state.reason).toContain('not installed');
    expect(state.status === 'error' && state.reason).toContain('blocked until you turn Protect off');
    expect(clears(h)).toEqual([]);
    expect(h.protect.running).toBe(false);
    await h.runner.setSwitch('protect', false);
    expect(clears(h)).toEqual(['clear']);
  });

  it('backs off between attempts and gives up after 5 starts in a minute, the proxy still set', async () => {
    const { h, clock } = await protectedHarness();
    h.setCompanion('exits');
    h.ports[0]?.closeFromHost();
    await h.settled();
    const waits = [0, 500, 1_000, 2_000, 4_000];
    for (const [i, wait] of waits.entries()) {
      expect(h.protect.state.status).toBe('reconnecting');
      if (wait > 0) {
        clock.advance(wait - 1);
        await h.settled();
        expect(h.ports.length).toBe(1 + i);
      }
      clock.advance(wait > 0 ? 1 : 0);
      await h.settled();
      expect(h.ports.length).toBe(2 + i);
    }
    const state = h.protect.state;
    expect(state).toMatchObject({ status: 'error', code: 'companion-exited' });
    expect(state.status === 'error' && state.reason).toContain('stopped 6 times within 60 s');
    expect(clears(h)).toEqual([]);
    expect(clock.pending).toBe(0);
  });

  it('starts from the shortest wait again after the companion came back', async () => {
    const { h, clock } = await protectedHarness();
    h.ports[0]?.closeFromHost();
    await h.settled();
    clock.advance(0);
    await h.settled();
    await h.emit(joined(1));
    h.ports[1]?.closeFromHost();
    await h.settled();
    clock.advance(0);
    await h.settled();
    expect(h.ports.length).toBe(3);
  });

  it('turning Protect off while it waits to start the companion cancels the start and clears the proxy', async () => {
    const { h, clock } = await protectedHarness();
    h.setCompanion('exits');
    h.ports[0]?.closeFromHost();
    await h.settled();
    clock.advance(0);
    await h.settled();
    expect(clock.pending).toBe(1);
    await h.runner.setSwitch('protect', false);
    expect(clock.pending).toBe(0);
    expect(h.protect.state).toEqual({ status: 'off' });
    expect(h.proxyCalls.at(-1)).toBe('clear');
    clock.advance(10_000);
    await h.settled();
    expect(h.ports.length).toBe(2);
  });

  it('says so in words when a paired companion stops: it is the user to start it again', async () => {
    const PAIRING: Pairing = { socksPort: 1090, dataPort: 4100, secret: 'p'.repeat(43) };
    const h = switchHarness({ pairing: PAIRING });
    await h.runner.setSwitch('protect', true);
    await h.emit({
      target: 'background',
      type: 'protect-companion-link',
      link: { status: 'joined', dataPort: 4100 },
    });
    await h.emit(PROTECTED);
    await h.emit({
      target: 'background',
      type: 'protect-companion-link',
      link: { status: 'lost', dataPort: 4100, code: 'companion-closed', reason: 'closed' },
    });
    expect(h.protect.state).toMatchObject({ status: 'error', code: 'paired-companion-stopped' });
    expect(h.proxyCalls.filter((c) => c === 'clear')).toEqual([]);
  });

  it('"New path": asks the engine for one while on, shows it being found, and keeps the proxy throughout', async () => {
    const h = switchHarness();
    await h.runner.setSwitch('protect', true);
    await h.emit(joined());
    await h.emit(PROTECTED);
    expect(await h.runner.act('protect', 'new-path')).toEqual({ ok: true });
    expect(h.sent().at(-1)).toBe('protect-new-path');
    await h.emit({
      target: 'background',
      type: 'protect-state',
      state: { status: 'reconnecting', reason: 'finding a new path', renewing: true },
    });
    expect(h.protect.state).toEqual({
      status: 'reconnecting',
      detail: 'Finding a new path… Nothing goes out directly meanwhile.',
    });
    expect(h.infos.at(-1)).toMatchObject({ renewing: true });
    expect(h.infos.at(-1)?.path).toBeUndefined();
    await h.emit(PROTECTED);
    expect(h.protect.state.status).toBe('on');
    expect(h.infos.at(-1)?.renewing).toBeUndefined();
    expect(h.proxyCalls.filter((c) => c === 'clear')).toEqual([]);
  });

  it('"New path" does nothing unless Protect is on', async () => {
    const h = switchHarness();
    await h.runner.act('protect', 'new-path');
    await h.runner.setSwitch('protect', true);
    await h.runner.act('protect', 'new-path');
    expect(h.sent()).not.toContain('protect-new-path');
    expect(await h.runner.act('volunteer', 'new-path')).toMatchObject({ ok: false, code: 'bad-command' });
  });

  it('puts changed settings in place while on: proxy settings as a new rule, path settings as a new run, never clearing the proxy', async () => {
    const h = switchHarness();
    await h.runner.setSwitch('protect', true);
    await h.emit(joined());
    await h.emit(PROTECTED);
    const before = await storeSettings();

    // A site that bypasses: only the proxy rule changes.
    await h.runner.settingsChanged({ ...before, bypassSites: ['example.org'] });
    expect(h.proxyCalls.at(-1)).toEqual({ ...PROXY_TO_COMPANION, bypassSites: ['example.org'] });
    expect(h.sent().filter((type) => type === 'protect-start')).toHaveLength(1);
    expect(h.protect.state.status).toBe('on');

    // Direct mode: a new run of the engine, joined to the same companion, the proxy kept.
    await h.runner.settingsChanged({ ...before, bypassSites: ['example.org'], mode: 'direct' });
    expect(h.sent().slice(-2)).toEqual(['protect-start', 'protect-companion']);
    expect(h.commands.at(-2)).toMatchObject({ type: 'protect-start', mode: 'direct' });
    expect(h.protect.state).toEqual({
      status: 'reconnecting',
      detail: 'Applying the new settings… Nothing goes out directly meanwhile.',
    });
    await h.emit({ target: 'background', type: 'protect-state', state: { status: 'connecting' } });
    expect(h.protect.state.status).toBe('reconnecting');
    await h.emit(joined());
    await h.emit({
      target: 'background',
      type: 'protect-state',
      state: { status: 'protected', path: { mode: 'direct', exitPeerId: 'exit1', exitKey: 'k' } },
    });
    expect(h.protect.state).toMatchObject({ status: 'on', detail: 'Direct to exit exit1' });
    expect(h.proxyCalls.filter((c) => c === 'clear')).toEqual([]);
    expect(h.ports).toHaveLength(1);

    // Settings that Protect does not use change nothing.
    const calls = h.proxyCalls.length;
    const sent = h.sent().length;
    await h.runner.settingsChanged({
      ...before,
      bypassSites: ['example.org'],
      mode: 'direct',
      volunteerCapacity: 9,
    });
    expect([h.proxyCalls.length, h.sent().length]).toEqual([calls, sent]);
  });

  it('a new signaling server bypasses the proxy before the engine dials it', async () => {
    const h = switchHarness();
    await h.runner.setSwitch('protect', true);
    await h.emit(joined());
    await h.emit(PROTECTED);
    const sentBefore = h.sent().length;
    await h.runner.settingsChanged({ ...(await storeSettings()), signalingUrl: 'wss://signal.example.org/' });
    expect(h.proxyCalls.at(-1)).toMatchObject({ signalingUrl: 'wss://signal.example.org/' });
    expect(h.sent().slice(sentBefore)).toEqual(['protect-start', 'protect-companion']);
    expect(h.commands.at(-2)).toMatchObject({ signalingUrl: 'wss://signal.example.org/' });
  });

  it('a new pairing starts the other companion and points the proxy at it, never clearing it', async () => {
    const PAIRING: Pairing = { socksPort: 1090, dataPort: 4100, secret: 'p'.repeat(43) };
    const h = switchHarness({ pairing: PAIRING });
    await h.runner.setSwitch('protect', true);
    await h.emit({
      target: 'background',
      type: 'protect-companion-link',
      link: { status: 'joined', dataPort: 4100 },
    });
    await h.emit(PROTECTED);
    expect(h.proxyCalls).toEqual([{ ...PROXY_TO_COMPANION, socksPort: 1090, dataPort: 4100 }]);

    // Unpaired: the companion is started through native messaging again.
    await h.replaceSettings(await storeSettings());
    expect(h.ports).toHaveLength(1);
    expect(h.proxyCalls.at(-1)).toEqual(PROXY_TO_COMPANION);
    expect(h.protect.state.status).toBe('reconnecting');
    await h.emit(joined());
    await h.emit(PROTECTED);
    expect(h.protect.state.status).toBe('on');
    expect(h.proxyCalls.filter((c) => c === 'clear')).toEqual([]);
  });
});

/** The settings a harness without options stores (routeLoopback on, as the e2e builds use). */
async function storeSettings() {
  return { ...DEFAULT_SETTINGS, routeLoopback: true };
}
