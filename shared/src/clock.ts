/**
 * The one clock shape every part takes, so that tests can drive time: a monotonic `now` for rates and
 * timeouts, and timers. Parts that only read the time take `Pick<Clock, 'now'>`.
 */
export interface Clock {
  /** Milliseconds, monotonic: for rates, deadlines and timeouts, never for calendar dates. */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
