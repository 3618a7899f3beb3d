import { z } from 'zod';
import { pairingSchema } from './pairing-code';

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
  /**
   * A companion started by hand and paired with its one-time code. When present, Protect uses it instead
   * of starting the companion through native messaging.
   */
  pairing: pairingSchema.optional(),
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
    routeLoopback: field(shape.routeLoopback, record['routeLoopback'], DEFAULT_SETTINGS.routeLoopback),
    volunteerCapacity: field(
      shape.volunteerCapacity,
      record['volunteerCapacity'],
      DEFAULT_SETTINGS.volunteerCapacity,
    ),
    ...(pairing ? { pairing } : {}),
  };
}
