import browser from 'webextension-polyfill';
import type { ToolbarTheme } from './toolbar-icon';

/**
 * Which toolbar theme to draw the icon for. Chrome has no API for the toolbar's colours and its service worker
 * has no `matchMedia`, so the extension's own pages tell it: each page that loads (popup, settings, downloads,
 * player) stores what `prefers-color-scheme` says there, and again when it changes while it is open. That
 * follows the browser's light/dark mode (which follows the system's by default); a custom theme with a dark
 * toolbar in light mode goes unseen, and a switch made while no page is open shows when the popup next opens.
 * (The offscreen document, which lives while an engine runs, has no `storage` API to report with.) Kept in `storage.local`, so a restarted browser draws the right
 * variant before any page has opened.
 */

export const COLOR_SCHEME_KEY = 'look:colorScheme';
const DARK_QUERY = '(prefers-color-scheme: dark)';

export function parseToolbarTheme(value: unknown): ToolbarTheme | undefined {
  return value === 'light' || value === 'dark' ? value : undefined;
}

export async function loadToolbarTheme(): Promise<ToolbarTheme> {
  const stored = await browser.storage.local.get(COLOR_SCHEME_KEY);
  return parseToolbarTheme(stored[COLOR_SCHEME_KEY]) ?? 'light';
}

/** Calls `listener` when a page stores another colour scheme. Returns an unsubscribe. */
export function watchToolbarTheme(listener: (theme: ToolbarTheme) => void): () => void {
  const onChanged = (changes: Record<string, { newValue?: unknown }>, area: string) => {
    if (area !== 'local' || !(COLOR_SCHEME_KEY in changes)) return;
    const theme = parseToolbarTheme(changes[COLOR_SCHEME_KEY]?.newValue);
    if (theme) listener(theme);
  };
  browser.storage.onChanged.addListener(onChanged);
  return () => browser.storage.onChanged.removeListener(onChanged);
}

/** The part of `MediaQueryList` used here (a fake in tests). */
export type DarkQuery = {
  matches: boolean;
  addEventListener(type: 'change', listener: () => void): void;
  removeEventListener(type: 'change', listener: () => void): void;
};

/**
 * Stores this page's colour scheme now and whenever it changes; writes only what differs, so pages that agree
 * do not wake every storage watcher. Returns a function that stops listening.
 */
export function reportColorScheme(query: DarkQuery = matchMedia(DARK_QUERY)): () => void {
  const report = () => {
    const theme: ToolbarTheme = query.matches ? 'dark' : 'light';
    void browser.storage.local
      .get(COLOR_SCHEME_KEY)
      .then((stored) =>
        parseToolbarTheme(stored[COLOR_SCHEME_KEY]) === theme
          ? undefined
          : browser.storage.local.set({ [COLOR_SCHEME_KEY]: theme }),
      )
      .catch(() => undefined);
  };
  report();
  query.addEventListener('change', report);
  return () => query.removeEventListener('change', report);
}
