import { z } from 'zod';
import type { VolunteerStats } from './volunteer-messages';

/**
 * What a volunteer relayed this calendar month (UTC), for the monthly data cap. Kept in storage.local: it
 * must outlive restarts. Pure functions, so the month's arithmetic is tested without a browser.
 */

export const volunteerUsageSchema = z.object({
  month: z.string().regex(/^\d{4}-\d{2}$/),
  bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});
export type VolunteerUsage = z.infer<typeof volunteerUsageSchema>;

export function monthOf(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 7);
}

/** The stored usage if it is this month's, else a fresh month. */
export function usageThisMonth(stored: VolunteerUsage | undefined, epochMs: number): VolunteerUsage {
  const month = monthOf(epochMs);
  return stored?.month === month ? stored : { month, bytes: 0 };
}

function relayed(stats: VolunteerStats): number {
  return stats.bytesFromClients + stats.bytesToClients;
}

/**
 * Bytes relayed between two reports of the relay's counters. A new run starts its counters from zero: then
 * everything it reports is new.
 */
export function relayedSince(previous: VolunteerStats, next: VolunteerStats): number {
  const before = relayed(next) >= relayed(previous) ? relayed(previous) : 0;
  return Math.max(0, relayed(next) - before);
}

export function capReached(usage: VolunteerUsage, monthlyCapMiB: number): boolean {
  return monthlyCapMiB > 0 && usage.bytes >= monthlyCapMiB * 1024 * 1024;
}
