import { z } from 'zod';

/**
 * Every message that crosses an extension context (popup/options → background, background ↔ offscreen
 * document). `target` says who must act on it: `chrome.runtime.sendMessage` reaches every extension page at
 * once, so each context ignores what is not addressed to it. Messages are parsed, not trusted: a stale
 * offscreen document from an older build, or a bug, must produce a typed error and not a crash.
 */

export const MAX_REASON_LENGTH = 500;
const reason = z.string().max(MAX_REASON_LENGTH);
const code = z.string().min(1).max(64);
const port = z.number().int().min(1).max(65535);
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const wsUrl = z
  .string()
  .max(2048)
  .refine((value) => /^wss?:\/\//i.test(value), 'must be a ws:// or wss:// URL');

export const SWITCH_NAMES = ['protect', 'volunteer'] as const;
export type SwitchName = (typeof SWITCH_NAMES)[number];

/**
 * What a switch shows, the same states for both so the popup renders them alike. `reconnecting` is Protect's
 * (a path was up and is being rebuilt; traffic is blocked meanwhile); `paused` is Volunteer's (a cap the
 * volunteer chose was reached).
 */
export const switchStateSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('off') }),
  z.object({ status: z.literal('connecting'), detail: reason.optional() }),
  z.object({ status: z.literal('on'), detail: reason.optional() }),
  z.object({ status: z.literal('reconnecting'), detail: reason.optional() }),
  z.object({ status: z.literal('paused'), code, reason }),
  z.object({ status: z.literal('error'), code, reason }),
]);
export type SwitchState = z.infer<typeof switchStateSchema>;

export const protectPathSchema = z.object({
  mode: z.enum(['two-hop', 'direct']),
  relayPeerId: z.string().max(128).optional(),
  exitPeerId: z.string().max(128),
  exitKey: z.string().max(256),
});
export type ProtectPath = z.infer<typeof protectPathSchema>;

/** The client engine's state as the offscreen document reports it (a plain-data copy of ProtectState). */
export const protectEngineStateSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('off') }),
  z.object({ status: z.literal('connecting') }),
  z.object({ status: z.literal('protected'), path: protectPathSchema }),
  z.object({ status: z.literal('reconnecting'), code: code.optional(), message: reason.optional() }),
  z.object({ status: z.literal('error'), code, message: reason }),
]);
export type ProtectEngineState = z.infer<typeof protectEngineStateSchema>;

export const volunteerEngineStateSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('off') }),
  z.object({ status: z.literal('connecting') }),
  z.object({ status: z.literal('on') }),
  z.object({ status: z.literal('error'), code, message: reason }),
]);
export type VolunteerEngineState = z.infer<typeof volunteerEngineStateSchema>;

export const protectStatsSchema = z.object({
  bytesUp: count,
  bytesDown: count,
  streamsOpen: count,
  /** Browser connections refused because no path was up (the kill switch at work). */
  blocked: count,
  blockedWhileReconnecting: count,
  rttMs: z.number().min(0).max(600_000).optional(),
});
export type ProtectStatsWire = z.infer<typeof protectStatsSchema>;

export const ZERO_PROTECT_STATS: ProtectStatsWire = {
  bytesUp: 0,
  bytesDown: 0,
  streamsOpen: 0,
  blocked: 0,
  blockedWhileReconnecting: 0,
};

/** What the popup shows under Protect: the current path and its counters. */
export const protectInfoSchema = z.object({
  path: protectPathSchema.optional(),
  stats: protectStatsSchema,
});
export type ProtectInfo = z.infer<typeof protectInfoSchema>;

export const volunteerStatsSchema = z.object({
  clientsNow: count,
  circuitsTotal: count,
  bytesFromClients: count,
  bytesToClients: count,
  helped24h: count,
  capacity: count,
});
export type VolunteerStatsWire = z.infer<typeof volunteerStatsSchema>;

export const ZERO_VOLUNTEER_STATS: VolunteerStatsWire = {
  clientsNow: 0,
  circuitsTotal: 0,
  bytesFromClients: 0,
  bytesToClients: 0,
  helped24h: 0,
  capacity: 0,
};

const companionTarget = z.object({ dataPort: port, secret: z.string().min(16).max(256) });

// ── background → offscreen document ────────────────────────────────────────────────────────────────────

export const offscreenCommandSchema = z.discriminatedUnion('type', [
  z.object({
    target: z.literal('offscreen'),
    type: z.literal('protect-start'),
    signalingUrl: wsUrl,
    /** Absent while the companion is still starting: `protect-companion` brings it later. */
    companion: companionTarget.optional(),
    mode: z.enum(['two-hop', 'direct']),
  }),
  z.object({
    target: z.literal('offscreen'),
    type: z.literal('protect-companion'),
    companion: companionTarget,
  }),
  z.object({ target: z.literal('offscreen'), type: z.literal('protect-stop') }),
  z.object({
    target: z.literal('offscreen'),
    type: z.literal('volunteer-start'),
    signalingUrl: wsUrl,
    capacity: z.number().int().min(1).max(64),
    /** 0: no cap. */
    bandwidthBytesPerSec: z.number().int().min(0).max(1e10),
  }),
  z.object({ target: z.literal('offscreen'), type: z.literal('volunteer-stop') }),
  /** Asked by a restarted service worker to learn what the (surviving) offscreen document is running. */
  z.object({ target: z.literal('offscreen'), type: z.literal('status') }),
]);
export type OffscreenCommand = z.infer<typeof offscreenCommandSchema>;

/** What the offscreen document answers to every command: its engines' current states. */
export const engineStatusSchema = z.object({
  protect: protectEngineStateSchema,
  volunteer: volunteerEngineStateSchema,
});
export type EngineStatus = z.infer<typeof engineStatusSchema>;

export const offscreenReplySchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), status: engineStatusSchema }),
  z.object({ ok: z.literal(false), code, message: reason }),
]);
export type OffscreenReply = z.infer<typeof offscreenReplySchema>;

// ── offscreen document → background ────────────────────────────────────────────────────────────────────

export const engineEventSchema = z.discriminatedUnion('type', [
  z.object({ target: z.literal('background'), type: z.literal('offscreen-ready') }),
  z.object({
    target: z.literal('background'),
    type: z.literal('protect-state'),
    state: protectEngineStateSchema,
  }),
  z.object({ target: z.literal('background'), type: z.literal('protect-stats'), stats: protectStatsSchema }),
  z.object({
    target: z.literal('background'),
    type: z.literal('volunteer-state'),
    state: volunteerEngineStateSchema,
  }),
  z.object({
    target: z.literal('background'),
    type: z.literal('volunteer-stats'),
    stats: volunteerStatsSchema,
  }),
]);
export type EngineEvent = z.infer<typeof engineEventSchema>;

// ── popup / options → background ───────────────────────────────────────────────────────────────────────

export const uiRequestSchema = z.discriminatedUnion('type', [
  z.object({
    target: z.literal('background'),
    type: z.literal('set-switch'),
    name: z.enum(SWITCH_NAMES),
    on: z.boolean(),
  }),
]);
export type UiRequest = z.infer<typeof uiRequestSchema>;

export const uiReplySchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true) }),
  z.object({ ok: z.literal(false), code, message: reason }),
]);
export type UiReply = z.infer<typeof uiReplySchema>;

/** Anything the background accepts: UI requests and engine events share the `background` target. */
export const backgroundMessageSchema = z.union([uiRequestSchema, engineEventSchema]);
export type BackgroundMessage = z.infer<typeof backgroundMessageSchema>;

export function truncateReason(text: string): string {
  return text.length <= MAX_REASON_LENGTH ? text : `${text.slice(0, MAX_REASON_LENGTH - 1)}…`;
}
