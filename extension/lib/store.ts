import browser from 'webextension-polyfill';
import { z } from 'zod';
import {
  EMPTY_PROTECT_INFO,
  protectInfoSchema,
  type ProtectInfo,
} from '../features/protect/protect-messages';
import {
  volunteerStatsSchema,
  ZERO_VOLUNTEER_STATS,
  type VolunteerStats,
} from '../features/volunteer/volunteer-messages';
import { volunteerUsageSchema, type VolunteerUsage } from '../features/volunteer/volunteer-usage';
import { parseHistory, type VolunteerHistory } from '../features/volunteer/volunteer-history';
import { SWITCH_NAMES, switchStateSchema, type SwitchName, type SwitchState } from './messages';
import { parseSettings, SETTINGS_KEY, type Settings } from './settings';

/**
 * Where state lives. What the user asked for (settings, which switches they turned on) is in
 * `storage.local` and survives restarts; what is happening now (each switch's state, the relay counters)
 * is in `storage.session`, which the MV3 worker can lose and rebuild but the popup reads at any time.
 */

const WANTED_KEY = 'wanted';
const stateKey = (name: SwitchName) => `state:${name}`;
const VOLUNTEER_STATS_KEY = 'stats:volunteer';
const PROTECT_INFO_KEY = 'info:protect';
const USAGE_KEY = 'usage:volunteer';
const HISTORY_KEY = 'history:volunteer';
const WAITING_UPDATE_KEY = 'update:waiting';

/** Which switches the user turned on. A switch missing from what is stored (one added since) is off. */
const wantedSchema = z.partialRecord(z.enum(SWITCH_NAMES), z.boolean());
export type Wanted = Record<SwitchName, boolean>;
const NOTHING_WANTED = Object.fromEntries(SWITCH_NAMES.map((name) => [name, false])) as Wanted;

export async function loadSettings(): Promise<Settings> {
  const stored = await browser.storage.local.get(SETTINGS_KEY);
  return parseSettings(stored[SETTINGS_KEY]);
}

export async function saveSettings(settings: Settings): Promise<void> {
  await browser.storage.local.set({ [SETTINGS_KEY]: settings });
}

/**
 * Changes some settings on top of what is stored now, so a page that saves one part (the pairing, the
 * signaling URL) never writes back a stale copy of another.
 */
export async function updateSettings(change: (stored: Settings) => Settings): Promise<Settings> {
  const next = change(await loadSettings());
  await saveSettings(next);
  return next;
}

export async function loadWanted(): Promise<Wanted> {
  const stored = await browser.storage.local.get(WANTED_KEY);
  const parsed = wantedSchema.safeParse(stored[WANTED_KEY]);
  return { ...NOTHING_WANTED, ...(parsed.success ? parsed.data : {}) };
}

export async function saveWanted(name: SwitchName, on: boolean): Promise<void> {
  const wanted = await loadWanted();
  await browser.storage.local.set({ [WANTED_KEY]: { ...wanted, [name]: on } });
}

export async function loadSwitchState(name: SwitchName): Promise<SwitchState> {
  const key = stateKey(name);
  const stored = await browser.storage.session.get(key);
  const parsed = switchStateSchema.safeParse(stored[key]);
  return parsed.success ? parsed.data : { status: 'off' };
}

export async function saveSwitchState(name: SwitchName, state: SwitchState): Promise<void> {
  await browser.storage.session.set({ [stateKey(name)]: state });
}

/** Calls `listener` with a switch's state whenever the background saves it. Returns an unsubscribe. */
export function watchSwitchState(name: SwitchName, listener: (state: SwitchState) => void): () => void {
  const key = stateKey(name);
  const onChanged = (changes: Record<string, { newValue?: unknown }>, area: string) => {
    if (area !== 'session' || !(key in changes)) return;
    const parsed = switchStateSchema.safeParse(changes[key]?.newValue);
    listener(parsed.success ? parsed.data : { status: 'off' });
  };
  browser.storage.onChanged.addListener(onChanged);
  return () => browser.storage.onChanged.removeListener(onChanged);
}

export async function loadVolunteerStats(): Promise<VolunteerStats> {
  const stored = await browser.storage.session.get(VOLUNTEER_STATS_KEY);
  const parsed = volunteerStatsSchema.safeParse(stored[VOLUNTEER_STATS_KEY]);
  return parsed.success ? parsed.data : ZERO_VOLUNTEER_STATS;
}

export async function saveVolunteerStats(stats: VolunteerStats): Promise<void> {
  await browser.storage.session.set({ [VOLUNTEER_STATS_KEY]: stats });
}

export async function loadProtectInfo(): Promise<ProtectInfo> {
  const stored = await browser.storage.session.get(PROTECT_INFO_KEY);
  const parsed = protectInfoSchema.safeParse(stored[PROTECT_INFO_KEY]);
  return parsed.success ? parsed.data : EMPTY_PROTECT_INFO;
}

export async function saveProtectInfo(info: ProtectInfo): Promise<void> {
  await browser.storage.session.set({ [PROTECT_INFO_KEY]: info });
}

/**
 * The add-on's version that Firefox holds until Protect is off (lib/update-gate.ts). In `storage.session`, which
 * Firefox empties when the add-on unloads, so the version that then starts finds none waiting.
 */
export async function loadWaitingUpdate(): Promise<string | undefined> {
  const stored = await browser.storage.session.get(WAITING_UPDATE_KEY);
  const parsed = z.string().max(64).safeParse(stored[WAITING_UPDATE_KEY]);
  return parsed.success ? parsed.data : undefined;
}

export async function saveWaitingUpdate(version: string): Promise<void> {
  await browser.storage.session.set({ [WAITING_UPDATE_KEY]: version });
}

export async function loadUsage(): Promise<VolunteerUsage | undefined> {
  const stored = await browser.storage.local.get(USAGE_KEY);
  const parsed = volunteerUsageSchema.safeParse(stored[USAGE_KEY]);
  return parsed.success ? parsed.data : undefined;
}

export async function saveUsage(usage: VolunteerUsage): Promise<void> {
  await browser.storage.local.set({ [USAGE_KEY]: usage });
}

/** The volunteer's per-day figures for the week that ends at `epochMs` (validated: storage is not trusted). */
export async function loadHistory(epochMs: number): Promise<VolunteerHistory> {
  const stored = await browser.storage.local.get(HISTORY_KEY);
  return parseHistory(stored[HISTORY_KEY], epochMs);
}

export async function saveHistory(history: VolunteerHistory): Promise<void> {
  await browser.storage.local.set({ [HISTORY_KEY]: history });
}

export type StoreSnapshot = {
  protect: SwitchState;
  volunteer: SwitchState;
  volunteerStats: VolunteerStats;
  protectInfo: ProtectInfo;
  usage: VolunteerUsage | undefined;
  volunteerHistory: VolunteerHistory;
  settings: Settings;
};

export async function loadSnapshot(): Promise<StoreSnapshot> {
  const [protect, volunteer, volunteerStats, protectInfo, usage, volunteerHistory, settings] =
    await Promise.all([
      loadSwitchState('protect'),
      loadSwitchState('volunteer'),
      loadVolunteerStats(),
      loadProtectInfo(),
      loadUsage(),
      loadHistory(Date.now()),
      loadSettings(),
    ]);
  return { protect, volunteer, volunteerStats, protectInfo, usage, volunteerHistory, settings };
}

/** Calls `listener` with a fresh snapshot whenever stored state changes. Returns an unsubscribe. */
export function watchSnapshot(listener: (snapshot: StoreSnapshot) => void): () => void {
  const onChanged = (_changes: unknown, area: string) => {
    if (area !== 'session' && area !== 'local') return;
    void loadSnapshot().then(listener);
  };
  browser.storage.onChanged.addListener(onChanged);
  return () => browser.storage.onChanged.removeListener(onChanged);
}

/**
 * Calls `listener` with the new settings whenever they are saved (the options page, a pairing), so running
 * features can put them in place. Returns an unsubscribe.
 */
export function watchSettings(listener: (settings: Settings) => void): () => void {
  const onChanged = (changes: Record<string, { newValue?: unknown }>, area: string) => {
    if (area !== 'local' || !(SETTINGS_KEY in changes)) return;
    listener(parseSettings(changes[SETTINGS_KEY]?.newValue));
  };
  browser.storage.onChanged.addListener(onChanged);
  return () => browser.storage.onChanged.removeListener(onChanged);
}
