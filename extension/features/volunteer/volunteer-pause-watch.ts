import type { Clock } from '@underpass/shared/clock';
import { Emitter } from '@underpass/shared/emitter';
import type { PauseReason } from './volunteer-messages';

/**
 * Decides when Volunteer pauses for the volunteer's conditions (on battery, on a metered connection) and when
 * it resumes. It pauses at once when a condition it was asked to watch holds, and resumes only once none has
 * held for `resumeAfterMs`: a loose plug or a flapping network must not make the relay come and go, each time
 * costing its clients their path.
 */

/** What the browser says now; a field is undefined where the browser does not tell. */
export type Conditions = { onBattery: boolean | undefined; metered: boolean | undefined };

/** Where the conditions come from: the browser's Battery Status and Network Information APIs, or a fake. */
export interface ConditionSource {
  current(): Conditions;
  /** Calls `listener` whenever a condition may have changed; returns an unsubscribe. */
  subscribe(listener: () => void): () => void;
}

export type PauseWanted = { onBattery: boolean; metered: boolean };

/** Long enough to ride out a plug wiggled or a network handover; short enough to resume by itself. */
export const RESUME_AFTER_MS = 15_000;

export type PauseWatchOptions = {
  source: ConditionSource;
  wanted: PauseWanted;
  clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
  resumeAfterMs?: number;
};

export class PauseWatch extends Emitter<{ change: [reason: PauseReason | undefined] }> {
  private current: PauseReason | undefined;
  private resumeTimer: unknown;
  private readonly unsubscribe: () => void;

  constructor(private readonly options: PauseWatchOptions) {
    super();
    this.current = this.holding();
    this.unsubscribe = options.source.subscribe(() => this.check());
  }

  /** Why Volunteer is paused now; undefined when it may run. */
  get reason(): PauseReason | undefined {
    return this.current;
  }

  close(): void {
    this.unsubscribe();
    this.cancelResume();
  }

  private check(): void {
    const holding = this.holding();
    if (holding) {
      this.cancelResume();
      if (holding !== this.current) this.set(holding);
    } else if (this.current && this.resumeTimer === undefined) {
      this.resumeTimer = this.options.clock.setTimeout(() => {
        this.resumeTimer = undefined;
        if (!this.holding()) this.set(undefined);
      }, this.options.resumeAfterMs ?? RESUME_AFTER_MS);
    }
  }

  /** The condition that holds now among those the volunteer asked to watch; battery first. */
  private holding(): PauseReason | undefined {
    const now = this.options.source.current();
    const { wanted } = this.options;
    if (wanted.onBattery && now.onBattery === true) return 'on-battery';
    if (wanted.metered && now.metered === true) return 'metered';
    return undefined;
  }

  private set(reason: PauseReason | undefined): void {
    this.current = reason;
    this.emit('change', reason);
  }

  private cancelResume(): void {
    if (this.resumeTimer === undefined) return;
    this.options.clock.clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
  }
}
