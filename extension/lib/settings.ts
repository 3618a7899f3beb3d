import { z } from 'zod';

/**
 * The build's default signaling server (UNDERPASS_SIGNALING_URL at build time; see wxt.config.ts). Outside a
 * build (unit tests under a plain vitest config) the replacement is absent and the local default applies.
 */
export const DEFAULT_SIGNALING_URL: string =
  typeof __UNDERPASS_DEFAULT_SIGNALING_URL__ === 'string'
    ? __UNDERPASS_DEFAULT_SIGNALING_URL__
    : 'ws://127.0.0.1:8600/';

export const SETTINGS_KEY = 'settings';
export const DEFAULT_VOLUNTEER_CAPACITY = 4;

export const settingsSchema = z.object({
  signalingUrl: z.string().max(2048),
  /**
   * Testing only: send loopback destinations (127.0.0.0/8, localhost) through the tunnel too, by adding
   * `<-loopback>` to the proxy bypass list. Never on by default: a user's local services must stay local.
   */
  routeLoopback: z.boolean(),
  volunteerCapacity: z.number().int().min(1).max(64),
});
export type Settings = z.infer<typeof settingsSchema>;

export const DEFAULT_SETTINGS: Settings = {
  signalingUrl: DEFAULT_SIGNALING_URL,
  routeLoopback: false,
  volunteerCapacity: DEFAULT_VOLUNTEER_CAPACITY,
};

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

/** Reads stored settings, falling back field by field to defaults when something is missing or malformed. */
export function parseSettings(stored: unknown): Settings {
  const partial = settingsSchema.partial().safeParse(stored);
  const merged: Settings = { ...DEFAULT_SETTINGS, ...(partial.success ? stripUndefined(partial.data) : {}) };
  const url = checkSignalingUrl(merged.signalingUrl);
  return { ...merged, signalingUrl: url.ok ? url.url : DEFAULT_SETTINGS.signalingUrl };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
