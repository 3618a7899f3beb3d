import { beforeEach, describe, expect, it, vi } from 'vitest';

/** The colour scheme pages report for the toolbar icon, against an in-memory `browser.storage`. */

type Listener = (changes: Record<string, { newValue?: unknown }>, area: string) => void;
const storage = vi.hoisted(() => {
  const listeners = new Set<Listener>();
  const data = new Map<string, unknown>();
  const writes: Record<string, unknown>[] = [];
  return {
    data,
    writes,
    listeners,
    local: {
      async get(key: string) {
        return data.has(key) ? { [key]: data.get(key) } : {};
      },
      async set(items: Record<string, unknown>) {
        writes.push(items);
        for (const [key, value] of Object.entries(items)) data.set(key, value);
        const changes = Object.fromEntries(Object.entries(items).map(([k, v]) => [k, { newValue: v }]));
        for (const listener of listeners) listener(changes, 'local');
      },
    },
  };
});

vi.mock('webextension-polyfill', () => ({
  default: {
    storage: {
      local: storage.local,
      onChanged: {
        addListener: (listener: Listener) => storage.listeners.add(listener),
        removeListener: (listener: Listener) => storage.listeners.delete(listener),
      },
    },
  },
}));

const { COLOR_SCHEME_KEY, loadToolbarTheme, reportColorScheme, watchToolbarTheme } =
  await import('../lib/color-scheme');

/** A `prefers-color-scheme: dark` query whose answer the test flips. */
function darkQuery(matches: boolean) {
  const listeners = new Set<() => void>();
  return {
    matches,
    addEventListener: (_type: 'change', listener: () => void) => listeners.add(listener),
    removeEventListener: (_type: 'change', listener: () => void) => listeners.delete(listener),
    flip(next: boolean) {
      this.matches = next;
      for (const listener of listeners) listener();
    },
    listeners,
  };
}

const stored = () => storage.data.get(COLOR_SCHEME_KEY);

beforeEach(() => {
  storage.data.clear();
  storage.writes.length = 0;
  storage.listeners.clear();
});

describe('color scheme', () => {
  it('is light until a page says otherwise, and ignores what is not a theme', async () => {
    expect(await loadToolbarTheme()).toBe('light');
    storage.data.set(COLOR_SCHEME_KEY, 'purple');
    expect(await loadToolbarTheme()).toBe('light');
    storage.data.set(COLOR_SCHEME_KEY, 'dark');
    expect(await loadToolbarTheme()).toBe('dark');
  });

  it('a page stores its scheme at once and on every change, and stops when asked', async () => {
    const query = darkQuery(true);
    const stop = reportColorScheme(query);
    await vi.waitFor(() => expect(stored()).toBe('dark'));
    query.flip(false);
    await vi.waitFor(() => expect(stored()).toBe('light'));
    stop();
    expect(query.listeners.size).toBe(0);
  });

  it('writes nothing when the stored scheme already agrees', async () => {
    storage.data.set(COLOR_SCHEME_KEY, 'dark');
    const query = darkQuery(true);
    reportColorScheme(query);
    query.flip(true);
    // The fake storage answers in microtasks: by the next macrotask both reports have read and decided.
    await new Promise((resolve) => setImmediate(resolve));
    expect(storage.writes).toEqual([]);
  });

  it('the background hears each new theme, and nothing else', async () => {
    const heard: string[] = [];
    const stop = watchToolbarTheme((theme) => heard.push(theme));
    await storage.local.set({ [COLOR_SCHEME_KEY]: 'dark' });
    await storage.local.set({ other: 'value' });
    await storage.local.set({ [COLOR_SCHEME_KEY]: 'nonsense' });
    await storage.local.set({ [COLOR_SCHEME_KEY]: 'light' });
    stop();
    await storage.local.set({ [COLOR_SCHEME_KEY]: 'dark' });
    expect(heard).toEqual(['dark', 'light']);
  });
});
