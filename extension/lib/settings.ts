import { z } from 'zod';
import { pairingSchema } from '@underpass/shared/data-port';
import { DEVELOPMENT_DIRECTORY_KEY_TEXT, parseDirectoryKeys } from '@underpass/shared/trust';
import { directoryKeysSchema } from './wire-types';

/**
 * The build's default signaling server (UNDERPASS_SIGNALING_URL at build time; see wxt.config.ts). Outside a
 * build (unit tests under a plain vitest config) the replacement is absent and the local default applies.
 */
export const DEFAULT_SIGNALING_URL: string =
  typeof __UNDERPASS_DEFAULT_SIGNALING_URL__ === 'string'
    ? __UNDERPASS_DEFAULT_SIGNALING_URL__
    : 'ws://127.0.0.1:8600/';

/**
 * The build's directory keys (UNDERPASS_DIRECTORY_KEYS at build time; see wxt.config.ts): only exits certified
 * by one of them are used. Outside a build, the development key (shared/src/trust/development.ts).
 */
export const DEFAULT_DIRECTORY_KEYS: string[] =
  typeof __UNDERPASS_DEFAULT_DIRECTORY_KEYS__ === 'object'
    ? __UNDERPASS_DEFAULT_DIRECTORY_KEYS__
    : [DEVELOPMENT_DIRECTORY_KEY_TEXT];

export const SETTINGS_KEY = 'settings';
export const DEFAULT_VOLUNTEER_CAPACITY = 4;
export const MAX_BYPASS_SITES = 200;

/** A site that bypasses the tunnel: a host name, optionally `*.` for its subdomains (Chrome's bypass syntax). */
export const bypassSiteSchema = z
  .string()
  .max(253)
  .regex(/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/);

export const settingsSchema = z.object({
  signalingUrl: z.string().max(2048),
  /** The directory keys this browser trusts (the build's, or the user's own network's from the options page). */
  directoryKeys: directoryKeysSchema,
  /**
   * Testing only: send loopback destinations (127.0.0.0/8, localhost) through the tunnel too, by adding
   * `<-loopback>` to the proxy bypass list. Never on by default: a user's local services must stay local.
   */
  routeLoopback: z.boolean(),
  volunteerCapacity: z.number().int().min(1).max(64),
  /** The volunteer's bandwidth cap in KiB/s, both directions together; 0: none. */
  volunteerBandwidthKiBps: z.number().int().min(0).max(10_000_000),
  /** The volunteer's monthly data cap in MiB; 0: none. Volunteering pauses when it is reached. */
  volunteerMonthlyMiB: z.number().int().min(0).max(100_000_000),
  /** Pause volunteering while the browser says it runs on battery (where it tells; off by default). */
  volunteerPauseOnBattery: z.boolean(),
  /** Pause volunteering while the browser says the connection is metered (where it tells; off by default). */
  volunteerPauseOnMetered: z.boolean(),
  /** two-hop: a volunteer relay between you and the exit, which then never learns your address. */
  mode: z.enum(['two-hop', 'direct']),
  /** Sites that go direct, outside the tunnel. */
  bypassSites: z.array(bypassSiteSchema).max(MAX_BYPASS_SITES),
  /**
   * A companion started by hand and paired with its one-time code. When present, Protect uses it instead
   * of starting the companion through native messaging.
   */
  pairing: pairingSchema.optional(),
});
export type Settings = z.infer<typeof settingsSchema>;

export const DEFAULT_SETTINGS: Settings = {
  signalingUrl: DEFAULT_SIGNALING_URL,
  directoryKeys: DEFAULT_DIRECTORY_KEYS,
  routeLoopback: false,
  volunteerCapacity: DEFAULT_VOLUNTEER_CAPACITY,
  volunteerBandwidthKiBps: 0,
  volunteerMonthlyMiB: 0,
  volunteerPauseOnBattery: false,
  volunteerPauseOnMetered: false,
  mode: 'two-hop',
  bypassSites: [],
};

/**
 * Reads the options page's bypass box: one site per line (or separated by commas or spaces); a URL is
 * reduced to its host. Returns the sites, or the first entry that is not a site.
 */
export function parseBypassSites(
  input: string,
): { ok: true; sites: string[] } | { ok: false; entry: string } {
  const sites: string[] = [];
  for (const raw of input.split(/[\s,]+/)) {
    if (!raw) continue;
    let entry = raw.trim().toLowerCase();
    if (/^[a-z]+:\/\//.test(entry)) {
      try {
        entry = new URL(entry).hostname;
      } catch {
        return { ok: false, entry: raw };
      }
    }
    entry = entry.replace(/\.$/, '');
    if (!bypassSiteSchema.safeParse(entry).success) return { ok: false, entry: raw };
    if (!sites.includes(entry)) sites.push(entry);
  }
  if (sites.length > MAX_BYPASS_SITES) return { ok: false, entry: `more than ${MAX_BYPASS_SITES} sites` };
  return { ok: true, sites };
}

export type UrlCheck = { ok: true; url: string } | { ok: false; reason: string };

/** Accepts only ws:// and wss:// URLs with a host; returns the normalized form. */
export function checkSignalingUrl(input: string): UrlCheck {
  const trimmed = input.trim();
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return { ok: false, reason: 'Not a URL. Expected something like wss://signal.example.org' };
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    return { ok: false, reason: 'The signaling URL must start with ws:// or wss://' };
  }
  if (!url.hostname) return { ok: false, reason: 'The signaling URL has no host' };
  if (url.username || url.password)
    return { ok: false, reason: 'The signaling URL must not contain credentials' };
  return { ok: true, url: url.toString() };
}

/**
 * Reads stored settings, falling back field by field to defaults when something is missing or malformed:
 * one bad field (an older build's format, a bug) must not cost the user the others, such as their pairing.
 */
export function parseSettings(stored: unknown): Settings {
  const record = typeof stored === 'object' && stored !== null ? (stored as Record<string, unknown>) : {};
  const field = <T>(schema: z.ZodType<T>, value: unknown, fallback: T): T => {
    const parsed = schema.safeParse(value);
    return parsed.success ? parsed.data : fallback;
  };
  const shape = settingsSchema.shape;
  const url = checkSignalingUrl(
    field(shape.signalingUrl, record['signalingUrl'], DEFAULT_SETTINGS.signalingUrl),
  );
  const pairing = field(shape.pairing, record['pairing'], undefined);
  return {
    signalingUrl: url.ok ? url.url : DEFAULT_SETTINGS.signalingUrl,
    directoryKeys: field(shape.directoryKeys, record['directoryKeys'], DEFAULT_SETTINGS.directoryKeys),
    routeLoopback: field(shape.routeLoopback, record['routeLoopback'], DEFAULT_SETTINGS.routeLoopback),
    volunteerCapacity: field(
      shape.volunteerCapacity,
      record['volunteerCapacity'],
      DEFAULT_SETTINGS.volunteerCapacity,
    ),
    volunteerBandwidthKiBps: field(
      shape.volunteerBandwidthKiBps,
      record['volunteerBandwidthKiBps'],
      DEFAULT_SETTINGS.volunteerBandwidthKiBps,
    ),
    volunteerMonthlyMiB: field(
      shape.volunteerMonthlyMiB,
      record['volunteerMonthlyMiB'],
      DEFAULT_SETTINGS.volunteerMonthlyMiB,
    ),
    volunteerPauseOnBattery: field(
      shape.volunteerPauseOnBattery,
      record['volunteerPauseOnBattery'],
      DEFAULT_SETTINGS.volunteerPauseOnBattery,
    ),
    volunteerPauseOnMetered: field(
      shape.volunteerPauseOnMetered,
      record['volunteerPauseOnMetered'],
      DEFAULT_SETTINGS.volunteerPauseOnMetered,
    ),
    mode: field(shape.mode, record['mode'], DEFAULT_SETTINGS.mode),
    bypassSites: field(shape.bypassSites, record['bypassSites'], DEFAULT_SETTINGS.bypassSites),
    ...(pairing ? { pairing } : {}),
  };
}

export type DirectoryKeysCheck = { ok: true; keys: string[] } | { ok: false; reason: string };

/** The options page's directory-key box: one key per line (or separated by spaces or commas), at least one. */
export function checkDirectoryKeys(input: string): DirectoryKeysCheck {
  const parsed = parseDirectoryKeys(input);
  if (!parsed.ok) return { ok: false, reason: `“${parsed.entry}”: ${parsed.reason}` };
  if (parsed.keys.length === 0)
    return { ok: false, reason: 'At least one directory key is needed: without one, no exit is trusted' };
  return { ok: true, keys: [...new Set(input.split(/[\s,]+/).filter(Boolean))] };
}
