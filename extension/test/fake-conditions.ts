import type { Conditions, ConditionSource } from '../features/volunteer/volunteer-pause-watch';

/** A battery and network that change when a test says so, as the browser's would fire `chargingchange`. */
export class FakeConditions implements ConditionSource {
  private readonly listeners = new Set<() => void>();

  constructor(private now: Conditions = { onBattery: false, metered: false }) {}

  current(): Conditions {
    return this.now;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Changes what the "browser" says and tells every subscriber. */
  set(change: Partial<Conditions>): void {
    this.now = { ...this.now, ...change };
    for (const listener of this.listeners) listener();
  }

  get subscribers(): number {
    return this.listeners.size;
  }
}
