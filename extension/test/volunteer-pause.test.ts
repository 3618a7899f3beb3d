import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../test/manual-clock';
import {
  browserConditionSource,
  conditionSupport,
  type BatteryLike,
  type ConnectionLike,
} from '../features/volunteer/browser-conditions';
import type { PauseReason } from '../features/volunteer/volunteer-messages';
import { PauseWatch, RESUME_AFTER_MS, type PauseWanted } from '../features/volunteer/volunteer-pause-watch';
import { FakeConditions } from './fake-conditions';

function watch(source: FakeConditions, wanted: PauseWanted) {
  const clock = new ManualClock();
  const pause = new PauseWatch({ source, wanted, clock });
  const changes: (PauseReason | undefined)[] = [];
  pause.on('change', (reason) => changes.push(reason));
  return { pause, clock, changes };
}

describe('PauseWatch', () => {
  it('pauses at once on battery and resumes only after the plug has stayed in', () => {
    const source = new FakeConditions();
    const { pause, clock, changes } = watch(source, { onBattery: true, metered: false });
    expect(pause.reason).toBeUndefined();
    source.set({ onBattery: true });
    expect(pause.reason).toBe('on-battery');
    // Plugged in, pulled out again within the delay: still paused, and no resume in between.
    source.set({ onBattery: false });
    clock.advance(RESUME_AFTER_MS - 1);
    source.set({ onBattery: true });
    clock.advance(RESUME_AFTER_MS * 2);
    expect(pause.reason).toBe('on-battery');
    expect(changes).toEqual(['on-battery']);
    source.set({ onBattery: false });
    clock.advance(RESUME_AFTER_MS - 1);
    expect(pause.reason).toBe('on-battery');
    clock.advance(1);
    expect(pause.reason).toBeUndefined();
    expect(changes).toEqual(['on-battery', undefined]);
  });

  it('starts paused when the condition already holds', () => {
    const source = new FakeConditions({ onBattery: false, metered: true });
    const { pause, changes } = watch(source, { onBattery: false, metered: true });
    expect(pause.reason).toBe('metered');
    expect(changes).toEqual([]);
  });

  it('watches only what the volunteer asked for', () => {
    const source = new FakeConditions();
    const { pause, changes } = watch(source, { onBattery: false, metered: true });
    source.set({ onBattery: true });
    expect(pause.reason).toBeUndefined();
    source.set({ metered: true });
    expect(pause.reason).toBe('metered');
    expect(changes).toEqual(['metered']);
  });

  it('says battery first, and moves from one reason to the other without resuming in between', () => {
    const source = new FakeConditions({ onBattery: true, metered: true });
    const { pause, clock, changes } = watch(source, { onBattery: true, metered: true });
    expect(pause.reason).toBe('on-battery');
    source.set({ onBattery: false });
    expect(pause.reason).toBe('metered');
    source.set({ metered: false });
    clock.advance(RESUME_AFTER_MS);
    expect(changes).toEqual(['metered', undefined]);
  });

  it('takes a browser that does not tell as never paused', () => {
    const source = new FakeConditions({ onBattery: undefined, metered: undefined });
    const { pause } = watch(source, { onBattery: true, metered: true });
    expect(pause.reason).toBeUndefined();
  });

  it('stops listening and cancels a pending resume when closed', () => {
    const source = new FakeConditions({ onBattery: true, metered: false });
    const { pause, clock, changes } = watch(source, { onBattery: true, metered: false });
    expect(source.subscribers).toBe(1);
    source.set({ onBattery: false });
    expect(clock.pending).toBe(1);
    pause.close();
    expect(source.subscribers).toBe(0);
    expect(clock.pending).toBe(0);
    expect(changes).toEqual([]);
  });
});

/** An EventTarget with the fields the browser's objects have, changed as the browser would change them. */
class FakeBattery extends EventTarget implements BatteryLike {
  charging = true;
}
class FakeConnection extends EventTarget implements ConnectionLike {
  type: string | undefined = 'wifi';
  saveData = false;
}

describe('the browser as a source of conditions', () => {
  it('tells what it can: Chromium on a desktop has a battery API but no connection type', () => {
    const desktop = { getBattery: async () => new FakeBattery(), connection: new FakeConnection() };
    desktop.connection.type = undefined;
    expect(conditionSupport(desktop)).toEqual({ battery: true, metered: false });
    expect(conditionSupport({ connection: new FakeConnection() })).toEqual({ battery: false, metered: true });
    expect(conditionSupport({})).toEqual({ battery: false, metered: false });
  });

  it('reads charging and the connection type, and passes their events on', async () => {
    const battery = new FakeBattery();
    const connection = new FakeConnection();
    const source = await browserConditionSource({ getBattery: async () => battery, connection });
    expect(source.current()).toEqual({ onBattery: false, metered: false });
    let calls = 0;
    const unsubscribe = source.subscribe(() => (calls += 1));
    battery.charging = false;
    battery.dispatchEvent(new Event('chargingchange'));
    expect(source.current().onBattery).toBe(true);
    connection.type = 'cellular';
    connection.dispatchEvent(new Event('change'));
    expect(source.current().metered).toBe(true);
    connection.type = 'ethernet';
    connection.saveData = true;
    expect(source.current().metered).toBe(true);
    expect(calls).toBe(2);
    unsubscribe();
    battery.dispatchEvent(new Event('chargingchange'));
    expect(calls).toBe(2);
  });

  it('says "does not tell" where the APIs are missing or refuse', async () => {
    const none = await browserConditionSource({});
    expect(none.current()).toEqual({ onBattery: undefined, metered: undefined });
    const refused = await browserConditionSource({
      getBattery: () => Promise.reject(new DOMException('not allowed', 'NotAllowedError')),
    });
    expect(refused.current()).toEqual({ onBattery: undefined, metered: undefined });
  });
});
