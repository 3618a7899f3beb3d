import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../lib/messages';
import type { Pairing } from '@underpass/shared/data-port';
import { DEFAULT_SETTINGS } from '../lib/settings';
import { PROTECTED, switchHarness } from './switch-harness';

const PROXY_TO_COMPANION = {
  socksPort: 1080,
  dataPort: 4000,
  signalingUrl: DEFAULT_SETTINGS.signalingUrl,
  routeLoopback: true,
  bypassSites: [],
};

describe('ProtectSwitch', () => {
  it('starts the path and the companion together, sets the proxy only once the path is up, and clears it when turned off', async () => {
    const h = switchHarness();
    expect(await h.runner.setSwitch('protect', true)).toEqual({ ok: true });
    expect(h.sent()).toEqual(['protect-start', 'protect-companion']);
    expect(h.commands[1]).toMatchObject({ companion: { dataPort: 4000, secret: 's'.repeat(32) } });
    expect(h.proxyCalls).toEqual([]);
    expect(h.protect.state).toEqual({ status: 'connecting', detail: 'Finding a path' });

    await h.emit(PROTECTED);
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

  it('keeps the proxy (fails closed) when the companion goes away after protecting', async () => {
    const h = switchHarness();
    await h.runner.setSwitch('protect', true);
    await h.emit(PROTECTED);
    h.ports[0]?.closeFromHost();
    await h.settled();
    expect(h.protect.state).toMatchObject({ status: 'error' });
    expect(h.proxyCalls.filter((c) => c === 'clear')).toEqual([]);
    expect(h.sent().at(-1)).toBe('protect-stop');
  });

  it('keeps the proxy while a lost path is rebuilt, says so, and shows the blocked count', async () => {
    const h = switchHarness();
    await h.runner.setSwitch('protect', true);
    await h.emit(PROTECTED);
    expect(h.infos.at(-1)?.path).toMatchObject({ relayPeerId: 'relay1', exitPeerId: 'exit1' });
    await h.emit({
      target: 'background',
      type: 'protect-state',
      state: { status: 'reconnecting', reason: 'the first hop closed' },
    });
    const stats = { bytesUp: 10, bytesDown: 20, streamsOpen: 0, blocked: 3, blockedWhileReconnecting: 3 };
    await h.emit({ target: 'background', type: 'protect-stats', stats });
    expect(h.protect.state.status).toBe('reconnecting');
    expect(h.proxyCalls.filter((c) => c === 'clear')).toEqual([]);
    expect(h.infos.at(-1)).toEqual({ stats });
    await h.emit(PROTECTED);
    expect(h.protect.state.status).toBe('on');
    expect(h.proxyCalls.length).toBe(1);
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
    expect(h.protect.state).toEqual({ status: 'connecting', detail: 'Finding a path' });
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
  const engineError = (
    code: 'companion-unreachable' | 'companion-unauthorized' | 'no-exit-available',
  ): EngineEvent => ({
    target: 'background',
    type: 'protect-state',
    state: { status: 'error', code, reason: 'raw' },
  });

  it('uses the pairing instead of native messaging, and the same data path and proxy', async () => {
    const h = switchHarness({ companion: 'missing', pairing: PAIRING });
    await h.runner.setSwitch('protect', true);
    expect(h.ports).toEqual([]);
    expect(h.commands[1]).toMatchObject({
      type: 'protect-companion',
      companion: { dataPort: 4100, secret: PAIRING.secret },
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
    await h.emit(engineError('companion-unreachable'));
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
    await h.emit(engineError('companion-unauthorized'));
    expect(h.protect.state).toMatchObject({ code: 'paired-companion-refused' });
  });

  it('passes failures that are not about the companion through unchanged', async () => {
    const h = switchHarness({ pairing: PAIRING });
    await h.runner.setSwitch('protect', true);
    await h.emit(engineError('no-exit-available'));
    expect(h.protect.state).toEqual({ status: 'error', code: 'no-exit-available', reason: 'raw' });
  });
});
