/**
 * Reconnect timing: exponential backoff with full jitter (each wait is uniform in [0, min(cap, base·2ⁿ))), so
 * ten thousand peers that lost the same server do not all knock at the same instant when it comes back. The
 * ceiling is also never longer than the outage has lasted so far: a refused connection fails at once, so a
 * restart of 2.7 s already counted six failures and a ceiling of 8 s, and an exit then stayed away from the
 * broker for 7.5 s after the server was back (chaos run, 2026-12-04) — no new path could reach it meanwhile.
 */

export interface BackoffOptions {
  /** The first wait is uniform in [0, baseMs). */
  baseMs: number;
  /** No wait is longer than this, however many attempts failed. */
  maxMs: number;
}

/**
 * A peer is back within 8 s of the server, however long it was away (and sooner after a short outage, see
 * above): the cap bounds a signaling restart's cost to a user (issue 11's goal is 10 s) and still spreads a herd.
 */
export const DEFAULT_RECONNECT_BACKOFF: BackoffOptions = { baseMs: 250, maxMs: 8_000 };

/**
 * The wait before reconnect attempt `failures` + 1, `random()` uniform in [0, 1). `outageMs`: how long the
 * server has been away so far; the ceiling is at least the base, and at most that.
 */
export function fullJitterDelay(
  failures: number,
  options: BackoffOptions,
  random: () => number,
  outageMs = Infinity,
): number {
  const exponent = Math.min(Math.max(0, Math.floor(failures)), 30);
  const outage = Number.isNaN(outageMs) ? Infinity : Math.max(options.baseMs, outageMs);
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** exponent, outage);
  const r = random();
  // A random source outside [0, 1) must not make a negative wait or one over the cap.
  const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1 - Number.EPSILON) : 0;
  return Math.floor(unit * ceiling);
}
