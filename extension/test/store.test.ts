import { beforeEach, describe, expect, it, vi } from 'vitest';

/**
 * The store against an in-memory `browser.storage` with the polyfill's API (get/set and onChanged): what
 * is stored comes back, what is malformed or absent comes back as the default, and watchers see changes.
 */

type Listener = (changes: Record<string, unknown>, area: string) => void;
const storage = vi.hoisted(() => {
  const listeners = new Set<(changes: Record<string, unknown>, area: string) => void>();
  const area = (name: string) => {
    const data = new Map<string, unknown>();
    return {
      data,
      async get(key: string) {
        return data.has(key) ? { [key]: structuredClone(data.get(key)) } : {};
      },
      async set(items: Record<string, unknown>) {
        for (const [key, value] of Object.entries(items)) data.set(key, structuredClone(value));
        for (const listener of listeners) listener(items, name);
      },
    };
  };
  return { local: area('local'), session: area('session'), listeners };
});

vi.mock('webextension-polyfill', () => ({
  default: {
    storage: {
      local: storage.local,
      session: storage.session,
      onChanged: {
        addListener: (listener: Listener) => storage.listeners.add(listener),
        removeListener: (listener: Listener) => storage.listeners.delete(listener),
      },
    },
  },
}));

const store = await import('../lib/store');
const { DEFAULT_SETTINGS } = await import('../lib/settings');

beforeEach(() => {
  storage.local.data.clear();
  storage.session.data.clear();
  storage.listeners.clear();
});

describe('store', () => {
  it('gives defaults when nothing is stored', async () => {
    expect(await store.loadSettings()).toEqual(DEFAULT_SETTINGS);
    expect(await store.loadWanted()).toEqual({ protect: false, volunteer: false, downloads: false });
    expect(await store.loadSwitchState('protect')).toEqual({ status: 'off' });
    expect(await store.loadUsage()).toBeUndefined();
  });

  it('keeps what the user asked for, one switch at a time', async () => {
    await store.saveWanted('protect', true);
    await store.saveWanted('volunteer', true);
    await store.saveWanted('protect', false);
    expect(await store.loadWanted()).toEqual({ protect: false, volunteer: true, downloads: false });
  });

  it('keeps each switch state apart, in session storage', async () => {
    await store.saveSwitchState('protect', { status: 'on', detail: 'Direct to exit e' });
    await store.saveSwitchState('volunteer', { status: 'paused', code: 'monthly-cap', reason: 'cap' });
    expect(await store.loadSwitchState('protect')).toEqual({ status: 'on', detail: 'Direct to exit e' });
    expect(await store.loadSwitchState('volunteer')).toMatchObject({ status: 'paused' });
    expect(storage.local.data.size).toBe(0);
  });

  it('reads malformed stored values as their defaults instead of trusting them', async () => {
    await storage.session.set({ 'state:protect': { status: 'on', detail: 42 } });
    await storage.local.set({ wanted: 'yes', 'usage:volunteer': { month: 'soon', bytes: -1 } });
    expect(await store.loadSwitchState('protect')).toEqual({ status: 'off' });
    expect(await store.loadWanted()).toEqual({ protect: false, volunteer: false, downloads: false });
    expect(await store.loadUsage()).toBeUndefined();
  });

  it('keeps the version of a waiting update in session storage, and reads a malformed one as none', async () => {
    expect(await store.loadWaitingUpdate()).toBeUndefined();
    await store.saveWaitingUpdate('1.0.1');
    expect(await store.loadWaitingUpdate()).toBe('1.0.1');
    expect(storage.local.data.size).toBe(0);
    await storage.session.set({ 'update:waiting': 101 });
    expect(await store.loadWaitingUpdate()).toBeUndefined();
  });

  it('changes one part of the settings without writing back a stale copy of another', async () => {
    await store.saveSettings({ ...DEFAULT_SETTINGS, volunteerCapacity: 7 });
    const next = await store.updateSettings((stored) => ({ ...stored, mode: 'direct' }));
    expect(next).toMatchObject({ mode: 'direct', volunteerCapacity: 7 });
    expect(await store.loadSettings()).toEqual(next);
  });

  it('tells a watcher about every change with a fresh snapshot, until it unsubscribes', async () => {
    const snapshots: unknown[] = [];
    let seen: () => void = () => {};
    const unsubscribe = store.watchSnapshot((snapshot) => {
      snapshots.push(snapshot);
      seen();
    });
    const first = new Promise<void>((resolve) => (seen = resolve));
    await store.saveSwitchState('volunteer', { status: 'on' });
    await first;
    expect(snapshots.at(-1)).toMatchObject({ volunteer: { status: 'on' }, protect: { status: 'off' } });
    unsubscribe();
    expect(storage.listeners.size).toBe(0);
  });
});
