import { z } from 'zod';
import {
  PROTECT_COMMANDS,
  PROTECT_EVENTS,
  protectEngineStateSchema,
} from '../features/protect/protect-messages';
import {
  VOLUNTEER_COMMANDS,
  VOLUNTEER_EVENTS,
  volunteerEngineStateSchema,
} from '../features/volunteer/volunteer-messages';
import {
  DOWNLOADS_COMMANDS,
  DOWNLOADS_EVENTS,
  DOWNLOADS_PAGE_COMMAND_TYPES,
  DOWNLOADS_PAGE_EVENT_TYPES,
  downloadsEngineStateSchema,
} from '../features/downloads/downloads-messages';
import { reasonSchema, switchErrorSchema, switchErrorCodeSchema } from './switch-error';

/**
 * Every message that crosses an extension context (popup/options → background, background ↔ engines' host),
 * assembled from each feature's own messages (`features/*\/…-messages.ts`). `target` says who must act on it:
 * `chrome.runtime.sendMessage` reaches every extension page at once, so each context ignores what is not
 * addressed to it. Messages are parsed, not trusted: a stale offscreen document from an older build, or a
 * bug, must produce a typed error and not a crash. Failures travel in one shape, `SwitchError`.
 */

export const SWITCH_NAMES = ['protect', 'volunteer', 'downloads'] as const;
export type SwitchName = (typeof SWITCH_NAMES)[number];

/**
 * What a switch shows, the same states for every feature so the popup renders them alike. `reconnecting` is
 * Protect's (a path was up and is being rebuilt; traffic is blocked meanwhile); `paused` is Volunteer's (a
 * cap the volunteer chose was reached).
 */
export const switchStateSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('off') }),
  z.object({ status: z.literal('connecting'), detail: reasonSchema.optional() }),
  z.object({ status: z.literal('on'), detail: reasonSchema.optional() }),
  z.object({ status: z.literal('reconnecting'), detail: reasonSchema.optional() }),
  z.object({ status: z.literal('paused'), code: switchErrorCodeSchema, reason: reasonSchema }),
  z.object({
    status: z.literal('error'),
    code: switchErrorCodeSchema,
    reason: reasonSchema,
    /** Protect's kill switch still holds: pages are blocked until the user turns it off (kept across restarts). */
    blocking: z.literal(true).optional(),
  }),
]);
export type SwitchState = z.infer<typeof switchStateSchema>;

// ── background → engines' host ─────────────────────────────────────────────────────────────────────────

export const offscreenCommandSchema = z.discriminatedUnion('type', [
  ...PROTECT_COMMANDS,
  ...VOLUNTEER_COMMANDS,
  ...DOWNLOADS_COMMANDS,
  /** Asked by a restarted service worker to learn what the (surviving) offscreen document is running. */
  z.object({ target: z.literal('offscreen'), type: z.literal('status') }),
]);
export type OffscreenCommand = z.infer<typeof offscreenCommandSchema>;

/** What the engines' host answers to every command: each engine's current state. */
export const engineStatusSchema = z.object({
  protect: protectEngineStateSchema,
  volunteer: volunteerEngineStateSchema,
  downloads: downloadsEngineStateSchema,
});
export type EngineStatus = z.infer<typeof engineStatusSchema>;

/** A failed request, in any direction: the one error shape and `ok: false`. */
const failureReplySchema = switchErrorSchema.extend({ ok: z.literal(false) });
export type FailureReply = z.infer<typeof failureReplySchema>;

export const offscreenReplySchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), status: engineStatusSchema }),
  failureReplySchema,
]);
export type OffscreenReply = z.infer<typeof offscreenReplySchema>;

// ── engines' host → background ─────────────────────────────────────────────────────────────────────────

export const engineEventSchema = z.discriminatedUnion('type', [
  z.object({ target: z.literal('background'), type: z.literal('offscreen-ready') }),
  ...PROTECT_EVENTS,
  ...VOLUNTEER_EVENTS,
  ...DOWNLOADS_EVENTS,
]);
export type EngineEvent = z.infer<typeof engineEventSchema>;

// ── extension pages ↔ engines' host ───────────────────────────────────────────────────────────────────────

/**
 * The commands extension pages send the engines' host directly (the same schema as the background's), and the
 * events they listen to. In Chrome every page hears the offscreen document's messages anyway; in Firefox the
 * host is in the background page, which answers exactly these (`lib/in-page-bridge.ts`).
 */
export const PAGE_COMMAND_TYPES: readonly OffscreenCommand['type'][] = [
  'status',
  ...DOWNLOADS_PAGE_COMMAND_TYPES,
];
export const PAGE_EVENT_TYPES: readonly EngineEvent['type'][] = DOWNLOADS_PAGE_EVENT_TYPES;

// ── popup / options → background ───────────────────────────────────────────────────────────────────────

/** What the user can ask of a running feature besides on and off. */
export const SWITCH_ACTIONS = ['new-path'] as const;
export type SwitchAction = (typeof SWITCH_ACTIONS)[number];

export const uiRequestSchema = z.discriminatedUnion('type', [
  z.object({
    target: z.literal('background'),
    type: z.literal('set-switch'),
    name: z.enum(SWITCH_NAMES),
    on: z.boolean(),
  }),
  z.object({
    target: z.literal('background'),
    type: z.literal('switch-action'),
    name: z.enum(SWITCH_NAMES),
    action: z.enum(SWITCH_ACTIONS),
  }),
]);
export type UiRequest = z.infer<typeof uiRequestSchema>;

export const uiReplySchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true) }),
  failureReplySchema,
]);
export type UiReply = z.infer<typeof uiReplySchema>;

/** Whether a runtime message is addressed to `target` (every context hears every message). */
export function isFor(message: unknown, target: 'offscreen' | 'background'): boolean {
  return typeof message === 'object' && message !== null && 'target' in message && message.target === target;
}
