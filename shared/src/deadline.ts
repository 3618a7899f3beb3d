import { systemClock, type Clock } from './clock.js';

export interface DeadlineOptions<T> {
  ms: number;
  /** The error the promise rejects with when the deadline passes first. */
  onTimeout: () => Error;
  /** What to do with a value that arrives after the deadline (close a socket, a stream): it has no owner. */
  disposeLate?: (value: T) => void;
  clock?: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
}

/**
 * `promise`, or a rejection with `onTimeout()` once `ms` have passed, whichever comes first. The timer is
 * cleared as soon as the promise settles, and a late value is handed to `disposeLate` rather than leaked.
 */
export function withDeadline<T>(promise: Promise<T>, options: DeadlineOptions<T>): Promise<T> {
  const clock = options.clock ?? systemClock;
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = clock.setTimeout(() => {
      settled = true;
      reject(options.onTimeout());
    }, options.ms);
    promise.then(
      (value) => {
        if (settled) {
          options.disposeLate?.(value);
          return;
        }
        settled = true;
        clock.clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        clock.clearTimeout(timer);
        reject(error);
      },
    );
  });
}
