import { systemClock, type Clock } from '../clock.js';
import { TokenBucket } from '../rate-limit.js';

/**
 * Each exit link a relay lacks costs a `connect-exit` message to the broker, asked for by whatever a client puts
 * in an OPEN cell. Unbounded, a client naming hundreds of unknown exit keys made the relay break the broker's
 * message rate (then 50/s; 200/s since links have lanes) and be cut off: one client knocked a volunteer off the network. So lookups are rationed
 * (a relay needs one per exit it serves, and a few more as exit links come and go), and a key the directory
 * just did not have is not asked about again for a while.
 */
export interface ExitLookupLimits {
  /** Lookups per second, sustained, and the burst above it. */
  ratePerSecond: number;
  burst: number;
  /** A key that failed is refused without asking for this long. */
  failureMemoryMs: number;
  /** Keys remembered as failed at once; the oldest are forgotten first. */
  maxFailuresRemembered: number;
}

export const DEFAULT_EXIT_LOOKUP_LIMITS: ExitLookupLimits = {
  ratePerSecond: 2,
  burst: 8,
  failureMemoryMs: 5_000,
  maxFailuresRemembered: 256,
};

export type ExitLookupVerdict = 'ask' | 'failed-recently' | 'rate-limited';

export class ExitLookups {
  private readonly bucket: TokenBucket;
  /** Exit key → when its failure is forgotten (insertion order = age). */
  private readonly failures = new Map<string, number>();
  private readonly limits: ExitLookupLimits;
  private readonly clock: Pick<Clock, 'now'>;

  constructor(limits: Partial<ExitLookupLimits> = {}, clock: Pick<Clock, 'now'> = systemClock) {
    this.limits = { ...DEFAULT_EXIT_LOOKUP_LIMITS, ...limits };
    this.clock = clock;
    this.bucket = new TokenBucket({
      ratePerSecond: this.limits.ratePerSecond,
      burst: this.limits.burst,
      clock,
    });
  }

  /** Whether to ask the broker for a link to this exit now. */
  admit(exitKeyId: string): ExitLookupVerdict {
    const forgetAt = this.failures.get(exitKeyId);
    if (forgetAt !== undefined) {
      if (this.clock.now() < forgetAt) return 'failed-recently';
      this.failures.delete(exitKeyId);
    }
    return this.bucket.tryTake() ? 'ask' : 'rate-limited';
  }

  /** The broker had no such exit (or could not be asked). */
  failed(exitKeyId: string): void {
    this.failures.delete(exitKeyId);
    this.failures.set(exitKeyId, this.clock.now() + this.limits.failureMemoryMs);
    if (this.failures.size > this.limits.maxFailuresRemembered) {
      const oldest = this.failures.keys().next();
      if (!oldest.done) this.failures.delete(oldest.value);
    }
  }
}
