import type { Clock } from '@underpass/shared/clock';

/**
 * When to start a companion again after it died while Protect was on: at once the first time (a crash is
 * usually a one-off, and every second without it is a second of blocked pages), then with a growing wait, and
 * never more than `maxPerWindow` starts in `windowMs`. A companion that keeps dying is broken; starting it in a
 * loop would only hide that, so past the limit the caller gives up and says so in words.
 */

export const DEFAULT_RESTART_DELAYS_MS: readonly number[] = [0, 500, 1_000, 2_000, 4_000];
export const DEFAULT_MAX_RESTARTS_PER_WINDOW = 5;
export const DEFAULT_RESTART_WINDOW_MS = 60_000;

export type CompanionRestartsOptions = {
  clock: Pick<Clock, 'now'>;
  /** The wait before the 1st, 2nd, … attempt of one outage; the last one repeats. */
  delaysMs?: readonly number[];
  maxPerWindow?: number;
  windowMs?: number;
};

export type RestartDecision =
  | {
      ok: true;
      /** 1 for the first attempt of this outage. */
      attempt: number;
      delayMs: number;
      /** Attempts left in the window after this one. */
      left: number;
    }
  | { ok: false; startsInWindow: number; windowMs: number };

export class CompanionRestarts {
  private readonly delays: readonly number[];
  private readonly maxPerWindow: number;
  private readonly windowMs: number;
  /** When each attempt in the window was allowed (bounded by maxPerWindow). */
  private starts: number[] = [];
  /** Attempts since the companion was last up. */
  private outageAttempts = 0;

  constructor(private readonly options: CompanionRestartsOptions) {
    const delays = options.delaysMs ?? DEFAULT_RESTART_DELAYS_MS;
    if (delays.length === 0 || delays.some((ms) => !Number.isFinite(ms) || ms < 0)) {
      throw new RangeError('delaysMs must be a non-empty list of waits ≥ 0');
    }
    this.delays = delays;
    this.maxPerWindow = Math.max(1, Math.floor(options.maxPerWindow ?? DEFAULT_MAX_RESTARTS_PER_WINDOW));
    this.windowMs = Math.max(1, options.windowMs ?? DEFAULT_RESTART_WINDOW_MS);
  }

  /** Asks for one more attempt; counts it when allowed. */
  next(): RestartDecision {
    const now = this.options.clock.now();
    this.starts = this.starts.filter((at) => now - at < this.windowMs);
    if (this.starts.length >= this.maxPerWindow) {
      return { ok: false, startsInWindow: this.starts.length, windowMs: this.windowMs };
    }
    this.starts.push(now);
    const attempt = this.outageAttempts + 1;
    this.outageAttempts = attempt;
    const delayMs = this.delays[Math.min(attempt - 1, this.delays.length - 1)] ?? 0;
    return { ok: true, attempt, delayMs, left: this.maxPerWindow - this.starts.length };
  }

  /** The companion is up again: the next outage starts its waits from the beginning (the window remembers). */
  succeeded(): void {
    this.outageAttempts = 0;
  }
}
