import { z } from 'zod';
import type { VolunteerStats } from './volunteer-messages';

/**
 * The volunteer's last seven days, for the popup's chart: per local calendar day, the people helped and the
 * bytes relayed. Kept in storage.local (it must outlive restarts), which is not trusted: every read is
 * validated entry by entry and bounded. Pure functions, so the calendar is tested with any clock.
 *
 * "People helped" on a day counts the clients whose link this relay accepted that day and that it had not
 * served in the 24 hours before. A relay cannot know who anyone is: a client's peer id is new on each
 * connection to the signaling server, so one person who reconnects counts again, and two people behind one
 * id cannot happen.
 */

export const HISTORY_DAYS = 7;

export const volunteerDaySchema = z.object({
  /** Local calendar day, YYYY-MM-DD. */
  day: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  helped: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});
export type VolunteerDay = z.infer<typeof volunteerDaySchema>;
export type VolunteerHistory = VolunteerDay[];
export type DayDelta = { helped: number; bytes: number };

/** More stored entries than this is not something this code wrote: read none of them. */
const MAX_STORED_ENTRIES = 64;

/** The local calendar day of `epochMs`, as YYYY-MM-DD. */
export function dayOf(epochMs: number): string {
  const date = new Date(epochMs);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** The `HISTORY_DAYS` local days that end with the day of `epochMs`, oldest first. */
export function lastDays(epochMs: number): string[] {
  const today = new Date(epochMs);
  const days: string[] = [];
  for (let back = HISTORY_DAYS - 1; back >= 0; back -= 1) {
    // Noon, by the calendar: a day is never 24 hours away across a daylight-saving change.
    const day = new Date(today.getFullYear(), today.getMonth(), today.getDate() - back, 12);
    days.push(dayOf(day.getTime()));
  }
  return days;
}

/**
 * Reads what storage holds: malformed entries are dropped (not the whole history), a day listed twice is
 * summed, and only days within the last week of `epochMs` are kept, oldest first.
 */
export function parseHistory(stored: unknown, epochMs: number): VolunteerHistory {
  if (!Array.isArray(stored) || stored.length > MAX_STORED_ENTRIES) return [];
  let history: VolunteerHistory = [];
  for (const entry of stored) {
    const parsed = volunteerDaySchema.safeParse(entry);
    if (parsed.success) history = addToDay(history, parsed.data.day, parsed.data);
  }
  return keepLastWeek(history, epochMs);
}

/** The history with `delta` added to `day`, trimmed to the week that ends at `epochMs`. */
export function addToHistory(
  history: VolunteerHistory,
  day: string,
  delta: DayDelta,
  epochMs: number,
): VolunteerHistory {
  return keepLastWeek(addToDay(history, day, delta), epochMs);
}

/** Seven days ending today, each with its figures (0 for a day with none): what the chart draws. */
export function weekOf(history: VolunteerHistory, epochMs: number): VolunteerHistory {
  return lastDays(epochMs).map(
    (day) => history.find((entry) => entry.day === day) ?? { day, helped: 0, bytes: 0 },
  );
}

/**
 * People helped between two reports of the relay's counters. A new run (after a pause or a restart) starts
 * its counter from zero: then everything it reports is new.
 */
export function helpedSince(previous: VolunteerStats, next: VolunteerStats): number {
  const before = next.helpedTotal >= previous.helpedTotal ? previous.helpedTotal : 0;
  return Math.max(0, next.helpedTotal - before);
}

function addToDay(history: VolunteerHistory, day: string, delta: DayDelta): VolunteerHistory {
  const sum = (a: number, b: number) => Math.min(Number.MAX_SAFE_INTEGER, a + Math.max(0, b));
  const found = history.find((entry) => entry.day === day);
  if (!found) return [...history, { day, helped: sum(0, delta.helped), bytes: sum(0, delta.bytes) }];
  return history.map((entry) =>
    entry === found
      ? { day, helped: sum(entry.helped, delta.helped), bytes: sum(entry.bytes, delta.bytes) }
      : entry,
  );
}

function keepLastWeek(history: VolunteerHistory, epochMs: number): VolunteerHistory {
  const week = lastDays(epochMs);
  // A day after today (the clock was set back) is not kept either: it would sit on the chart for a week.
  return history.filter((entry) => week.includes(entry.day)).sort((a, b) => a.day.localeCompare(b.day));
}
