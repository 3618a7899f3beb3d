import { describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../test/manual-clock';
import {
  addToHistory,
  dayOf,
  helpedSince,
  HISTORY_DAYS,
  lastDays,
  parseHistory,
  weekOf,
  type VolunteerHistory,
} from '../features/volunteer/volunteer-history';
import { HISTORY_FLUSH_MS, HistoryRecorder } from '../features/volunteer/volunteer-history-recorder';
import { ZERO_VOLUNTEER_STATS } from '../features/volunteer/volunteer-messages';

/** Local wall-clock times: the history counts in the volunteer's own calendar days. */
const at = (month: number, day: number, hour = 12, minute = 0) =>
  new Date(2026, month - 1, day, hour, minute).getTime();

describe('volunteer history', () => {
  it('names local days and the week that ends today, across a month and a year', () => {
    expect(dayOf(at(3, 5, 0, 0))).toBe('2026-03-05');
    expect(dayOf(at(3, 5, 23, 59))).toBe('2026-03-05');
    expect(lastDays(at(3, 2))).toEqual([
      '2026-02-24',
      '2026-02-25',
      '2026-02-26',
      '2026-02-27',
      '2026-02-28',
      '2026-03-01',
      '2026-03-02',
    ]);
    expect(lastDays(new Date(2027, 0, 1, 0, 30).getTime())[0]).toBe('2026-12-26');
    expect(lastDays(at(6, 1))).toHaveLength(HISTORY_DAYS);
  });

  it('adds into the day, rolls over at local midnight, and keeps only seven days', () => {
    let history: VolunteerHistory = [];
    history = addToHistory(history, dayOf(at(3, 1, 23, 59)), { helped: 2, bytes: 100 }, at(3, 1, 23, 59));
    history = addToHistory(history, dayOf(at(3, 1, 23, 59)), { helped: 1, bytes: 50 }, at(3, 1, 23, 59));
    history = addToHistory(history, dayOf(at(3, 2, 0, 0)), { helped: 1, bytes: 7 }, at(3, 2, 0, 0));
    expect(history).toEqual([
      { day: '2026-03-01', helped: 3, bytes: 150 },
      { day: '2026-03-02', helped: 1, bytes: 7 },
    ]);
    // Six days later, 1 March is still in the week; a day after that, it is gone.
    history = addToHistory(history, dayOf(at(3, 7)), { helped: 0, bytes: 1 }, at(3, 7));
    expect(history.map((d) => d.day)).toEqual(['2026-03-01', '2026-03-02', '2026-03-07']);
    history = addToHistory(history, dayOf(at(3, 8)), { helped: 0, bytes: 1 }, at(3, 8));
    expect(history.map((d) => d.day)).toEqual(['2026-03-02', '2026-03-07', '2026-03-08']);
    expect(weekOf(history, at(3, 8))).toEqual([
      { day: '2026-03-02', helped: 1, bytes: 7 },
      { day: '2026-03-03', helped: 0, bytes: 0 },
      { day: '2026-03-04', helped: 0, bytes: 0 },
      { day: '2026-03-05', helped: 0, bytes: 0 },
      { day: '2026-03-06', helped: 0, bytes: 0 },
      { day: '2026-03-07', helped: 0, bytes: 1 },
      { day: '2026-03-08', helped: 0, bytes: 1 },
    ]);
  });

  it('never grows past the largest safe integer, nor counts a negative delta', () => {
    const big = Number.MAX_SAFE_INTEGER - 1;
    let history = addToHistory([], '2026-03-01', { helped: big, bytes: big }, at(3, 1));
    history = addToHistory(history, '2026-03-01', { helped: 5, bytes: -5 }, at(3, 1));
    expect(history).toEqual([{ day: '2026-03-01', helped: Number.MAX_SAFE_INTEGER, bytes: big }]);
  });

  it('reads corrupt storage as far as it is sound, and no further', () => {
    const now = at(3, 8);
    expect(parseHistory(undefined, now)).toEqual([]);
    expect(parseHistory('garbage', now)).toEqual([]);
    expect(parseHistory({ day: '2026-03-08' }, now)).toEqual([]);
    expect(
      parseHistory(
        [
          { day: '2026-03-08', helped: 2, bytes: 10 },
          { day: '2026-03-08', helped: 1, bytes: 5 }, // twice: summed
          { day: '2026-03-07', helped: -1, bytes: 10 },
          { day: '2026-03-06', helped: 1.5, bytes: 10 },
          { day: '08/03/2026', helped: 1, bytes: 10 },
          { day: '2026-03-05', helped: 1, bytes: '10' },
          { day: '2026-03-04', helped: 1, bytes: 1e300 },
          { day: '2026-02-01', helped: 1, bytes: 1 }, // older than a week
          { day: '2026-03-09', helped: 9, bytes: 9 }, // tomorrow: the clock went back
          null,
          [],
          { day: '2026-03-03', helped: 4, bytes: 40, extra: 'ignored' },
        ],
        now,
      ),
    ).toEqual([
      { day: '2026-03-03', helped: 4, bytes: 40 },
      { day: '2026-03-08', helped: 3, bytes: 15 },
    ]);
    // A list longer than anything this code writes is not read at all.
    const flood = Array.from({ length: 100_000 }, () => ({ day: '2026-03-08', helped: 1, bytes: 1 }));
    expect(parseHistory(flood, now)).toEqual([]);
  });

  it('counts people helped from the rising counter, and a new run from zero', () => {
    const stats = (helpedTotal: number) => ({ ...ZERO_VOLUNTEER_STATS, helpedTotal });
    expect(helpedSince(stats(0), stats(2))).toBe(2);
    expect(helpedSince(stats(2), stats(2))).toBe(0);
    expect(helpedSince(stats(5), stats(1))).toBe(1);
  });
});

describe('HistoryRecorder', () => {
  function recorder(initial: unknown = undefined) {
    let stored: unknown = initial;
    let writes = 0;
    let now = at(3, 1, 23, 59);
    const clock = new ManualClock();
    const history = new HistoryRecorder({
      store: {
        loadHistory: async (epochMs) => parseHistory(stored, epochMs),
        saveHistory: async (next) => {
          writes += 1;
          stored = structuredClone(next);
        },
      },
      now: () => now,
      timers: clock,
    });
    return {
      history,
      clock,
      stored: () => stored,
      writes: () => writes,
      setNow: (ms: number) => {
        now = ms;
      },
    };
  }

  it('writes a batch once, after the flush delay, under the day each delta happened', async () => {
    const r = recorder();
    r.history.record({ helped: 1, bytes: 100 });
    r.history.record({ helped: 0, bytes: 200 });
    r.setNow(at(3, 2, 0, 1)); // past midnight: the next delta is the new day's
    r.history.record({ helped: 2, bytes: 5 });
    r.history.record({ helped: 0, bytes: 0 }); // nothing: not even a timer
    expect(r.writes()).toBe(0);
    r.clock.advance(HISTORY_FLUSH_MS - 1);
    expect(r.writes()).toBe(0);
    r.clock.advance(1);
    await r.history.flush();
    expect(r.writes()).toBe(1);
    expect(r.stored()).toEqual([
      { day: '2026-03-01', helped: 1, bytes: 300 },
      { day: '2026-03-02', helped: 2, bytes: 5 },
    ]);
    expect(r.clock.pending).toBe(0);
  });

  it('writes at once when asked (a stop), adds to what is stored, and replaces a corrupt store', async () => {
    const r = recorder([{ day: '2026-03-01', helped: 1, bytes: 1 }, 'junk']);
    r.history.record({ helped: 1, bytes: 9 });
    await r.history.flush();
    expect(r.stored()).toEqual([{ day: '2026-03-01', helped: 2, bytes: 10 }]);
    expect(r.clock.pending).toBe(0);
    // Nothing waiting: no write.
    await r.history.flush();
    expect(r.writes()).toBe(1);
  });

  it('loses the chart, never the relay, when storage fails', async () => {
    const clock = new ManualClock();
    const history = new HistoryRecorder({
      store: {
        loadHistory: async () => [],
        saveHistory: async () => {
          throw new Error('QUOTA_BYTES quota exceeded');
        },
      },
      now: () => at(3, 1),
      timers: clock,
    });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    history.record({ helped: 1, bytes: 1 });
    await expect(history.flush()).resolves.toBeUndefined();
    expect(warn).toHaveBeenCalledWith('underpass: the volunteer history was not saved', expect.any(Error));
    warn.mockRestore();
  });
});
