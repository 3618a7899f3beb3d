import type { Clock } from '@underpass/shared/clock';
import { addToHistory, dayOf, type DayDelta, type VolunteerHistory } from './volunteer-history';

/**
 * Counts the relay's figures into the seven-day history without writing storage at every report (the relay
 * reports twice a second): deltas wait in memory, each under the local day they happened on, and are written
 * together at most `flushAfterMs` after the first of them, and when volunteering stops or pauses.
 */

/**
 * Under the MV3 worker's 30 s idle limit: the worker lives at least 30 s after the last report, which is
 * after the first pending one, so a worker stopped for idleness has written everything first.
 */
export const HISTORY_FLUSH_MS = 20_000;

export type HistoryStore = {
  /** The stored history, validated, for the week that ends at `epochMs`. */
  loadHistory(epochMs: number): Promise<VolunteerHistory>;
  saveHistory(history: VolunteerHistory): Promise<void>;
};

export type HistoryRecorderOptions = {
  store: HistoryStore;
  /** Wall-clock time, for the calendar day. */
  now: () => number;
  timers: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
  flushAfterMs?: number;
};

export class HistoryRecorder {
  private pending = new Map<string, DayDelta>();
  private timer: unknown;
  /** Writes one after the other: a read-modify-write must not overlap another. */
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly options: HistoryRecorderOptions) {}

  record(delta: DayDelta): void {
    if (delta.helped <= 0 && delta.bytes <= 0) return;
    const day = dayOf(this.options.now());
    const before = this.pending.get(day) ?? { helped: 0, bytes: 0 };
    this.pending.set(day, {
      helped: before.helped + Math.max(0, delta.helped),
      bytes: before.bytes + Math.max(0, delta.bytes),
    });
    if (this.timer !== undefined) return;
    this.timer = this.options.timers.setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.options.flushAfterMs ?? HISTORY_FLUSH_MS);
  }

  /** Writes what waits now; resolves when it (and every write before it) is stored. */
  flush(): Promise<void> {
    if (this.timer !== undefined) {
      this.options.timers.clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.pending;
    this.pending = new Map();
    if (batch.size === 0) return this.writing;
    const { store, now } = this.options;
    this.writing = this.writing.then(async () => {
      try {
        const at = now();
        let history = await store.loadHistory(at);
        for (const [day, delta] of batch) history = addToHistory(history, day, delta, at);
        await store.saveHistory(history);
      } catch (error) {
        // A full or failing storage costs the chart these figures, never the relay.
        console.warn('underpass: the volunteer history was not saved', error);
      }
    });
    return this.writing;
  }
}
