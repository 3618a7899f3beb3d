import { z } from 'zod';
import { reasonSchema, switchErrorCodeSchema } from '../../lib/switch-error';
import { count, wsUrl } from '../../lib/wire-types';

/** Volunteer's messages between the background and the engines' host: commands, the relay's state and counters. */

export const pauseReasonSchema = z.enum(['on-battery', 'metered']);
export type PauseReason = z.infer<typeof pauseReasonSchema>;

export const volunteerEngineStateSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('off') }),
  z.object({ status: z.literal('connecting') }),
  z.object({ status: z.literal('on') }),
  /**
   * The signaling server was lost after the relay was on: the relay goes on serving the clients it has and
   * reconnects (attempt n in `nextInMs`); it takes no new clients until the server is back.
   */
  z.object({
    status: z.literal('reconnecting'),
    attempt: z.number().int().min(1).max(1_000_000),
    nextInMs: z.number().int().min(0).max(3_600_000),
    reason: reasonSchema,
  }),
  /**
   * The volunteer asked to pause on battery or on a metered connection and the browser says that is the case:
   * the relay is stopped (no clients, no place at the broker) and starts again by itself when it ends.
   */
  z.object({ status: z.literal('paused'), code: pauseReasonSchema }),
  z.object({ status: z.literal('error'), code: switchErrorCodeSchema, reason: reasonSchema }),
]);
export type VolunteerEngineState = z.infer<typeof volunteerEngineStateSchema>;

export const volunteerStatsSchema = z.object({
  clientsNow: count,
  circuitsTotal: count,
  bytesFromClients: count,
  bytesToClients: count,
  helped24h: count,
  /** Clients this run took that it had not served in the 24 hours before: rises, for the per-day history. */
  helpedTotal: count,
  capacity: count,
});
export type VolunteerStats = z.infer<typeof volunteerStatsSchema>;

export const ZERO_VOLUNTEER_STATS: VolunteerStats = {
  clientsNow: 0,
  circuitsTotal: 0,
  bytesFromClients: 0,
  bytesToClients: 0,
  helped24h: 0,
  helpedTotal: 0,
  capacity: 0,
};

/** background → engines' host. */
export const VOLUNTEER_COMMANDS = [
  z.object({
    target: z.literal('offscreen'),
    type: z.literal('volunteer-start'),
    signalingUrl: wsUrl,
    capacity: z.number().int().min(1).max(64),
    /** 0: no cap. */
    bandwidthBytesPerSec: z.number().int().min(0).max(1e10),
    /** Pause while the browser says it runs on battery / on a metered connection (where it tells). */
    pauseOnBattery: z.boolean(),
    pauseOnMetered: z.boolean(),
    /** False: the relay takes no new clients for now (see volunteer-new-clients); true when absent. */
    takeNewClients: z.boolean().optional(),
  }),
  z.object({ target: z.literal('offscreen'), type: z.literal('volunteer-stop') }),
  /**
   * Whether the relay may take new clients: not while our new WebRTC links cannot connect (Firefox, while the
   * user's own Protect holds its WebRTC policy strict). The clients it has keep their place.
   */
  z.object({ target: z.literal('offscreen'), type: z.literal('volunteer-new-clients'), take: z.boolean() }),
] as const;

/** engines' host → background. */
export const VOLUNTEER_EVENTS = [
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
] as const;
