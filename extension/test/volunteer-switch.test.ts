import { describe, expect, it, vi } from 'vitest';
import { capReached, relayedSince, usageThisMonth } from '../features/volunteer/volunteer-usage';
import { ZERO_VOLUNTEER_STATS } from '../features/volunteer/volunteer-messages';
import { switchHarness } from './switch-harness';
import { ManualClock } from '../../test/manual-clock';
import { HISTORY_FLUSH_MS } from '../features/volunteer/volunteer-history-recorder';

const STATS = {
  clientsNow: 1,
  circuitsTotal: 2,
  bytesFromClients: 3,
  bytesToClients: 4,
  helped24h: 1,
  helpedTotal: 1,
  capacity: 4,
};

describe('VolunteerSwitch', () => {
  it('takes no new clients while told so, in the running relay and in the next start', async () => {
    const h = switchHarness();
    // Not relaying: nothing to tell the host yet.
    await h.volunteer.takeNewClients(false);
    expect(h.sent()).toEqual([]);
    await h.runner.setSwitch('volunteer', true);
    expect(h.commands.at(-1)).toMatchObject({ type: 'volunteer-start', takeNewClients: false });
    await h.volunteer.takeNewClients(true);
    expect(h.commands.at(-1)).toEqual({ target: 'offscreen', type: 'volunteer-new-clients', take: true });
    await h.volunteer.takeNewClients(true);
    expect(h.sent().filter((type) => type === 'volunteer-new-clients')).toHaveLength(1);
  });

  it('goes on when the engine says so and stores its counters', async () => {
    const h = switchHarness();
    await h.runner.setSwitch('volunteer', true);
    expect(h.sent()).toEqual(['volunteer-start']);
    await h.emit({ target: 'background', type: 'volunteer-state', state: { status: 'on' } });
    await h.emit({ target: 'background', type: 'volunteer-stats', stats: STATS });
    expect(h.volunteer.state.status).toBe('on');
    expect(h.volunteer.clientsNow).toBe(1);
    expect(h.stats()).toEqual(STATS);
    expect(h.usage()?.bytes).toBe(7);
    await h.runner.setSwitch('volunteer', false);
    expect(h.sent().at(-1)).toBe('volunteer-stop');
    expect(h.volunteer.state).toEqual({ status: 'off' });
    expect(h.volunteer.clientsNow).toBe(0);
  });

  it('pauses at the monthly data cap and stays paused when turned on again', async () => {
    const h = switchHarness({ settings: { volunteerMonthlyMiB: 1 } });
    await h.runner.setSwitch('volunteer', true);
    await h.emit({ target: 'background', type: 'volunteer-state', state: { status: 'on' } });
    const stats = { ...STATS, bytesFromClients: 100_000, bytesToClients: 1_000_000 };
    await h.emit({ target: 'background', type: 'volunteer-stats', stats });
    expect(h.volunteer.state).toMatchObject({ status: 'paused', code: 'monthly-cap' });
    expect(h.sent().at(-1)).toBe('volunteer-stop');
    await h.runner.setSwitch('volunteer', true);
    expect(h.volunteer.state).toMatchObject({ status: 'paused' });
    expect(h.sent().filter((c) => c === 'volunteer-start')).toHaveLength(1);
  });

  it('adopts a relay that outlived the worker, so its clients keep their circuits', async () => {
    const h = switchHarness({
      wanted: { protect: false, volunteer: true, downloads: false },
      engines: { protect: { status: 'off' }, volunteer: { status: 'on' }, downloads: { status: 'off' } },
    });
    await h.runner.resume();
    expect(h.sent()).toEqual(['status']);
    expect(h.volunteer.state).toMatchObject({ status: 'on' });
    expect(h.volunteer.running).toBe(true);
    expect(h.releases()).toBe(0);
  });

  it('stops a relay the user no longer wants when the worker restarts', async () => {
    const h = switchHarness({
      engines: {
        protect: { status: 'off' },
        volunteer: { status: 'connecting' },
        downloads: { status: 'off' },
      },
    });
    await h.runner.resume();
    expect(h.sent()).toEqual(['status', 'volunteer-stop']);
    expect(h.volunteer.state).toEqual({ status: 'off' });
  });

  it('shows a lost signaling server as reconnecting, keeps relaying, and is on again when it is back', async () => {
    const h = switchHarness();
    await h.runner.setSwitch('volunteer', true);
    await h.emit({ target: 'background', type: 'volunteer-state', state: { status: 'on' } });
    await h.emit({ target: 'background', type: 'volunteer-stats', stats: STATS });
    await h.emit({
      target: 'background',
      type: 'volunteer-state',
      state: { status: 'reconnecting', attempt: 2, nextInMs: 1_400, reason: 'the server is shutting down' },
    });
    expect(h.volunteer.state).toEqual({
      status: 'reconnecting',
      detail: 'attempt 2, next in 2 s (the server is shutting down)',
    });
    expect(h.volunteer.running).toBe(true);
    expect(h.volunteer.clientsNow).toBe(1);
    expect(h.sent()).toEqual(['volunteer-start']);
    await h.emit({ target: 'background', type: 'volunteer-state', state: { status: 'on' } });
    expect(h.volunteer.state.status).toBe('on');
  });

  it('adopts a relay that is reconnecting when the worker restarts', async () => {
    const h = switchHarness({
      wanted: { protect: false, volunteer: true, downloads: false },
      engines: {
        protect: { status: 'off' },
        volunteer: { status: 'reconnecting', attempt: 1, nextInMs: 100, reason: 'gone' },
        downloads: { status: 'off' },
      },
    });
    await h.runner.resume();
    expect(h.sent()).toEqual(['status']);
    expect(h.volunteer.state).toMatchObject({ status: 'reconnecting' });
    expect(h.volunteer.running).toBe(true);
  });

  it('shows an engine failure and lets the engines go', async () => {
    const h = switchHarness();
    await h.runner.setSwitch('volunteer', true);
    await h.emit({
      target: 'background',
      type: 'volunteer-state',
      state: { status: 'error', code: 'signaling-closed', reason: 'Lost the signaling server' },
    });
    expect(h.volunteer.state).toMatchObject({ status: 'error', code: 'signaling-closed' });
    expect(h.volunteer.running).toBe(false);
    expect(h.releases()).toBeGreaterThan(0);
  });
});

describe('VolunteerSwitch: history and pauses', () => {
  it('counts people helped and bytes into the day, written in a batch and at stop', async () => {
    const clock = new ManualClock();
    let now = new Date(2026, 2, 1, 23, 59, 50).getTime();
    const h = switchHarness({ now: () => now, timers: clock });
    await h.runner.setSwitch('volunteer', true);
    await h.emit({ target: 'background', type: 'volunteer-state', state: { status: 'on' } });
    await h.emit({ target: 'background', type: 'volunteer-stats', stats: STATS });
    await h.emit({
      target: 'background',
      type: 'volunteer-stats',
      stats: { ...STATS, helpedTotal: 3, bytesToClients: 104 },
    });
    expect(h.history()).toBeUndefined(); // not yet: batched
    clock.advance(HISTORY_FLUSH_MS);
    await h.settled();
    await vi.waitFor(() => expect(h.history()).toEqual([{ day: '2026-03-01', helped: 3, bytes: 107 }]));
    now = new Date(2026, 2, 2, 0, 0, 10).getTime();
    await h.emit({
      target: 'background',
      type: 'volunteer-stats',
      stats: { ...STATS, helpedTotal: 4, bytesToClients: 204 },
    });
    await h.runner.setSwitch('volunteer', false);
    expect(h.history()).toEqual([
      { day: '2026-03-01', helped: 3, bytes: 107 },
      { day: '2026-03-02', helped: 1, bytes: 100 },
    ]);
  });

  it('shows the host pausing on battery, keeps the host, and counts the next run from zero', async () => {
    const h = switchHarness({ settings: { volunteerPauseOnBattery: true } });
    await h.runner.setSwitch('volunteer', true);
    expect(h.commands[0]).toMatchObject({
      type: 'volunteer-start',
      pauseOnBattery: true,
      pauseOnMetered: false,
    });
    await h.emit({ target: 'background', type: 'volunteer-state', state: { status: 'on' } });
    await h.emit({ target: 'background', type: 'volunteer-stats', stats: STATS });
    await h.emit({
      target: 'background',
      type: 'volunteer-state',
      state: { status: 'paused', code: 'on-battery' },
    });
    expect(h.volunteer.state).toMatchObject({ status: 'paused', code: 'on-battery' });
    expect(h.volunteer.state.status === 'paused' && h.volunteer.state.reason).toMatch(/^Paused: on battery/);
    expect(h.volunteer.running).toBe(true);
    expect(h.volunteer.clientsNow).toBe(0);
    expect(h.releases()).toBe(0);
    expect(h.stats()).toEqual(ZERO_VOLUNTEER_STATS);
    expect(h.history()).toEqual([expect.objectContaining({ helped: 1, bytes: 7 })]);
    // Resumed by the host: its new relay's counters start again from zero and all count.
    await h.emit({ target: 'background', type: 'volunteer-state', state: { status: 'on' } });
    await h.emit({ target: 'background', type: 'volunteer-stats', stats: { ...STATS, bytesToClients: 1 } });
    expect(h.usage()?.bytes).toBe(11);
    await h.runner.setSwitch('volunteer', false);
    expect(h.history()).toEqual([expect.objectContaining({ helped: 2, bytes: 11 })]);
  });

  it('adopts a paused relay after a worker restart', async () => {
    const h = switchHarness({
      wanted: { protect: false, volunteer: true, downloads: false },
      engines: {
        protect: { status: 'off' },
        volunteer: { status: 'paused', code: 'metered' },
        downloads: { status: 'off' },
      },
    });
    await h.runner.resume();
    expect(h.sent()).toEqual(['status']);
    expect(h.volunteer.state).toMatchObject({ status: 'paused', code: 'metered' });
    expect(h.volunteer.running).toBe(true);
  });
});

describe('VolunteerSwitch: settings take effect at once', () => {
  it('starts the relay again for a setting it runs with, and not for the others', async () => {
    const h = switchHarness();
    await h.runner.setSwitch('volunteer', true);
    await h.emit({ target: 'background', type: 'volunteer-state', state: { status: 'on' } });
    await h.changeSettings({ bypassSites: ['example.org'], mode: 'direct' });
    expect(h.sent()).toEqual(['volunteer-start']);
    await h.changeSettings({ volunteerCapacity: 9, volunteerBandwidthKiBps: 100 });
    expect(h.sent()).toEqual(['volunteer-start', 'volunteer-start']);
    expect(h.commands.at(-1)).toMatchObject({ capacity: 9, bandwidthBytesPerSec: 100 * 1024 });
    expect(h.volunteer.state.status).toBe('connecting');
    await h.changeSettings({ volunteerPauseOnBattery: true });
    expect(h.commands.at(-1)).toMatchObject({ type: 'volunteer-start', pauseOnBattery: true });
  });

  it('counts the old relay’s last report and the new run’s first once each', async () => {
    const h = switchHarness();
    await h.runner.setSwitch('volunteer', true);
    await h.emit({ target: 'background', type: 'volunteer-stats', stats: STATS });
    expect(h.usage()?.bytes).toBe(7);
    await h.changeSettings({ signalingUrl: 'wss://signal.example.org/' });
    // The host stopped the old relay for the new start; its last counters come after the restart.
    await h.emit({ target: 'background', type: 'volunteer-stats', stats: { ...STATS, bytesToClients: 10 } });
    expect(h.usage()?.bytes).toBe(13);
    await h.emit({
      target: 'background',
      type: 'volunteer-stats',
      stats: { ...ZERO_VOLUNTEER_STATS, bytesToClients: 2 },
    });
    expect(h.usage()?.bytes).toBe(15);
  });

  it('pauses when the monthly cap is lowered below this month’s use, and resumes when it is raised', async () => {
    const h = switchHarness();
    await h.runner.setSwitch('volunteer', true);
    await h.emit({ target: 'background', type: 'volunteer-state', state: { status: 'on' } });
    const stats = { ...STATS, bytesToClients: 2 * 1024 * 1024 };
    await h.emit({ target: 'background', type: 'volunteer-stats', stats });
    await h.changeSettings({ volunteerMonthlyMiB: 1 });
    expect(h.volunteer.state).toMatchObject({ status: 'paused', code: 'monthly-cap' });
    expect(h.sent()).toEqual(['volunteer-start', 'volunteer-stop']);
    await h.changeSettings({ volunteerMonthlyMiB: 2 });
    expect(h.volunteer.state).toMatchObject({ status: 'paused', reason: expect.stringContaining('(2 MiB)') });
    expect(h.sent()).toEqual(['volunteer-start', 'volunteer-stop']);
    await h.changeSettings({ volunteerMonthlyMiB: 0 });
    expect(h.sent()).toEqual(['volunteer-start', 'volunteer-stop', 'volunteer-start']);
    expect(h.volunteer.state.status).toBe('connecting');
    expect(h.volunteer.running).toBe(true);
  });

  it('does nothing while off', async () => {
    const h = switchHarness();
    await h.changeSettings({ volunteerCapacity: 9, volunteerMonthlyMiB: 1 });
    expect(h.sent()).toEqual([]);
    expect(h.volunteer.state).toEqual({ status: 'off' });
  });
});

describe('volunteer usage', () => {
  const DEC_2 = Date.UTC(2026, 11, 2);

  it('counts into this month and starts a new month from zero', () => {
    expect(usageThisMonth({ month: '2026-12', bytes: 5 }, DEC_2)).toEqual({ month: '2026-12', bytes: 5 });
    expect(usageThisMonth({ month: '2026-11', bytes: 5 }, DEC_2)).toEqual({ month: '2026-12', bytes: 0 });
    expect(usageThisMonth(undefined, DEC_2)).toEqual({ month: '2026-12', bytes: 0 });
  });

  it('counts what a run relayed since its last report; a new run counts from zero', () => {
    const before = { ...ZERO_VOLUNTEER_STATS, bytesFromClients: 100, bytesToClients: 50 };
    expect(relayedSince(before, { ...before, bytesToClients: 80 })).toBe(30);
    expect(relayedSince(before, { ...ZERO_VOLUNTEER_STATS, bytesToClients: 20 })).toBe(20);
  });

  it('has no cap at 0 MiB', () => {
    expect(capReached({ month: '2026-12', bytes: 10 ** 12 }, 0)).toBe(false);
    expect(capReached({ month: '2026-12', bytes: 1024 * 1024 }, 1)).toBe(true);
  });
});
