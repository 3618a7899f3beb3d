import { systemClock, type Clock } from '../clock.js';

/**
 * The least time between two load updates to the broker. The signaling server allows a connection 200
 * messages a second (burst 400) and drops one that keeps exceeding it; a relay's load changes with every
 * client link, which its clients control, so the updates must be bounded whatever they do.
 */
export const DEFAULT_LOAD_REPORT_INTERVAL_MS = 1_000;

export interface LoadReporterOptions {
  /** Sends one update (the signaling client's `reportLoad`). */
  report: (load: number) => void;
  /** Least time between two updates; the latest value waits at most this long. */
  intervalMs?: number;
  clock?: Clock;
}

/**
 * Coalesces load updates: at most one per interval, carrying the latest value, and none when the value is
 * what the broker was last told. The first change after a quiet interval goes out at once, so the broker
 * learns of a relay filling up without delay in the common case.
 */
export class LoadReporter {
  private readonly clock: Clock;
  private readonly intervalMs: number;
  /** What the broker was last told; undefined before the first update. */
  private sent: number | undefined;
  private sentAt = -Infinity;
  private latest: number | undefined;
  private timer: unknown;
  private closed = false;

  constructor(private readonly options: LoadReporterOptions) {
    this.clock = options.clock ?? systemClock;
    this.intervalMs = options.intervalMs ?? DEFAULT_LOAD_REPORT_INTERVAL_MS;
  }

  /** The load now; sent now, later (coalesced with what follows), or not at all if unchanged. */
  set(load: number): void {
    if (this.closed) return;
    this.latest = load;
    if (this.timer !== undefined) return; // the pending update will carry it
    const wait = this.sentAt + this.intervalMs - this.clock.now();
    if (wait <= 0) this.flush();
    else this.timer = this.clock.setTimeout(() => this.onTimer(), wait);
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private onTimer(): void {
    this.timer = undefined;
    if (!this.closed) this.flush();
  }

  private flush(): void {
    const load = this.latest;
    if (load === undefined || load === this.sent) return;
    this.sent = load;
    this.sentAt = this.clock.now();
    this.options.report(load);
  }
}
