/**
 * Runs tasks one at a time, in the order given: every switch command, engine event and watchdog check of the
 * background goes through one queue, so a fast on/off/on can never interleave two starts, and an event never
 * sees a switch half-started. A failed task is logged and does not stop the ones after it.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly onTaskFailed: (error: unknown) => void = reportTaskFailure) {}

  run<T>(task: () => Promise<T>): Promise<T> {
    const next = this.tail.then(task, task);
    this.tail = next.catch(this.onTaskFailed);
    return next;
  }
}

function reportTaskFailure(error: unknown): void {
  console.error('underpass: background task failed', error);
}
