import { dataPortSecretSchema } from '@underpass/shared/data-port';
import {
  DEFAULT_MAX_DESTINATION_LENGTH,
  DEFAULT_REFUSALS_KEPT,
  REFUSAL_REASONS,
} from '@underpass/shared/engines';
import { z } from 'zod';
import { reasonSchema, switchErrorCodeSchema } from '../../lib/switch-error';
import { count, directoryKeysSchema, wsUrl } from '../../lib/wire-types';

/**
 * Protect's messages between the background and the engines' host: its commands, the client engine's state
 * and counters, and what the popup reads of the current path.
 */

export const protectPathSchema = z.object({
  mode: z.enum(['two-hop', 'direct']),
  relayPeerId: z.string().max(128).optional(),
  exitPeerId: z.string().max(128),
  exitKey: z.string().max(256),
});
export type ProtectPath = z.infer<typeof protectPathSchema>;

/** The client engine's state as the engines' host reports it (a plain-data copy of ProtectEngine's). */
export const protectEngineStateSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('off') }),
  z.object({ status: z.literal('connecting') }),
  z.object({ status: z.literal('protected'), path: protectPathSchema }),
  z.object({
    status: z.literal('reconnecting'),
    reason: reasonSchema,
    /** The user asked for a new path (not a lost one). */
    renewing: z.literal(true).optional(),
  }),
  z.object({ status: z.literal('error'), code: switchErrorCodeSchema, reason: reasonSchema }),
]);
export type ProtectEngineState = z.infer<typeof protectEngineStateSchema>;

export const refusalReasonSchema = z.enum(REFUSAL_REASONS);
export type RefusalReason = z.infer<typeof refusalReasonSchema>;

/** Refused requests since Protect went on: counts by reason and the latest few (the engine's RefusalLog). */
export const refusalsSchema = z.object({
  total: count,
  byReason: z.partialRecord(refusalReasonSchema, count),
  recent: z
    .array(
      z.object({
        // The ellipsis of a cut destination is one more character.
        destination: z.string().max(DEFAULT_MAX_DESTINATION_LENGTH + 1),
        reason: refusalReasonSchema,
        at: z.number().min(0),
      }),
    )
    .max(DEFAULT_REFUSALS_KEPT),
});
export type Refusals = z.infer<typeof refusalsSchema>;
export const NO_REFUSALS: Refusals = { total: 0, byReason: {}, recent: [] };

export const protectStatsSchema = z.object({
  bytesUp: count,
  bytesDown: count,
  streamsOpen: count,
  /** Browser connections refused because no path was up (the kill switch at work). */
  blocked: count,
  blockedWhileReconnecting: count,
  rttMs: z.number().min(0).max(600_000).optional(),
  refusals: refusalsSchema,
});
export type ProtectStats = z.infer<typeof protectStatsSchema>;

export const ZERO_PROTECT_STATS: ProtectStats = {
  bytesUp: 0,
  bytesDown: 0,
  streamsOpen: 0,
  blocked: 0,
  blockedWhileReconnecting: 0,
  refusals: NO_REFUSALS,
};

/** What the popup shows under Protect: the current path and its counters. */
export const protectInfoSchema = z.object({
  path: protectPathSchema.optional(),
  stats: protectStatsSchema,
  /** A new path the user asked for is being built. */
  renewing: z.boolean().optional(),
});
export type ProtectInfo = z.infer<typeof protectInfoSchema>;
export const EMPTY_PROTECT_INFO: ProtectInfo = { stats: ZERO_PROTECT_STATS };

const companionTargetSchema = z.object({
  dataPort: z.number().int().min(1).max(65535),
  secret: dataPortSecretSchema,
});
export type CompanionTarget = z.infer<typeof companionTargetSchema>;

/**
 * The companion's data socket as the engines' host sees it. `lost` does not end the path: the background
 * decides (start the companion again, or give up in words) and the path waits for the next `protect-companion`.
 * `dataPort` says which companion, so word about one that was already replaced is ignored.
 */
export const companionLinkSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('joined'), dataPort: companionTargetSchema.shape.dataPort }),
  z.object({
    status: z.literal('lost'),
    dataPort: companionTargetSchema.shape.dataPort,
    code: switchErrorCodeSchema,
    reason: reasonSchema,
  }),
]);
export type CompanionLink = z.infer<typeof companionLinkSchema>;

/**
 * background → engines' host. The path is built at once; the companion's data port joins when it is up, and a
 * later `protect-companion` (a restarted companion) replaces the one before.
 */
export const PROTECT_COMMANDS = [
  z.object({
    target: z.literal('offscreen'),
    type: z.literal('protect-start'),
    signalingUrl: wsUrl,
    /** Only exits certified by one of these directory keys (settings.directoryKeys). */
    directoryKeys: directoryKeysSchema,
    mode: z.enum(['two-hop', 'direct']),
  }),
  z.object({
    target: z.literal('offscreen'),
    type: z.literal('protect-companion'),
    companion: companionTargetSchema,
  }),
  z.object({ target: z.literal('offscreen'), type: z.literal('protect-stop') }),
  /** A fresh path in place of the current one, the kill switch held meanwhile (ProtectEngine.renew). */
  z.object({ target: z.literal('offscreen'), type: z.literal('protect-new-path') }),
] as const;

/** engines' host → background. */
export const PROTECT_EVENTS = [
  z.object({
    target: z.literal('background'),
    type: z.literal('protect-state'),
    state: protectEngineStateSchema,
  }),
  z.object({ target: z.literal('background'), type: z.literal('protect-stats'), stats: protectStatsSchema }),
  z.object({
    target: z.literal('background'),
    type: z.literal('protect-companion-link'),
    link: companionLinkSchema,
  }),
] as const;
