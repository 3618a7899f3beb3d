/**
 * Reconnect timing: exponential backoff with full jitter (each wait is uniform in [0, min(cap, base·2ⁿ))), so
 * ten thousand peers that lost the same server do not all knock at the same instant when it comes back.
 */

export interface BackoffOptions {
  /** The first wait is uniform in [0, baseMs). */
  baseMs: number;
  /** No wait is longer than this, however many attempts failed. */
  maxMs: number;
}

/**
 * A peer reconnects within 8 s of the server being back, at worst, whatever the length of the outage: the
 * cap bounds a signaling restart's cost to a user (issue 11's goal is 10 s) and still spreads a herd.
 */
export const DEFAULT_RECONNECT_BACKOFF: BackoffOptions = { baseMs: 250, maxMs: 8_000 };

/** The wait before reconnect attempt `failures` + 1, `random()` uniform in [0, 1). */
export function fullJitterDelay(failures: number, options: BackoffOptions, random: () => number): number {
  const exponent = Math.min(Math.max(0, Math.floor(failures)), 30);
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** exponent);
  const r = random();
  // A random source outside [0, 1) must not make a negative wait or one over the cap.
  const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1 - Number.EPSILON) : 0;
  return Math.floor(unit * ceiling);
}
