/**
 * Liveness of a server's connections: WebSocket pings find peers whose network died (no pong, nothing sent),
 * and an idle sweep drops registered peers that stopped sending (they are asked for heartbeats in welcome).
 * Socket-free: it sees connections as `LivePeer`s and time through a Clock, so tests can drive it.
 */
import type { Clock } from '@underpass/shared/clock';

export interface LivePeer {
  /** Set whenever anything (a frame, a pong) comes from the peer; cleared here by each ping. */
  alive: boolean;
  /** False once the socket no longer carries frames: such a peer is skipped. */
  readonly open: boolean;
  /** When a registered peer last sent something; undefined while the idle timeout does not apply. */
  readonly idleSince: number | undefined;
  ping(): void;
  /** It answered neither the last ping nor sent anything since. */
  dropUnresponsive(): void;
  /** It sent nothing for the idle timeout. */
  dropIdle(): void;
}

export type LivenessOptions = {
  peers: () => Iterable<LivePeer>;
  pingIntervalMs: number;
  idleTimeoutMs: number;
  clock: Clock;
};

/**
 * Each connection is pinged once per interval, but the pings are spread over the interval in this many
 * slices: a ping is a syscall, and ten thousand at once would stall every match in flight.
 */
export const PING_SLICES = 100;
/** The idle sweep runs every quarter of the idle timeout, but never more often or rarer than these. */
export const MIN_IDLE_SWEEP_MS = 50;
export const MAX_IDLE_SWEEP_MS = 5_000;

export class Liveness {
  private round: LivePeer[] = [];
  private cursor = 0;
  private roundStarted = -Infinity;
  private readonly timers: { handle: unknown }[] = [];
  private stopped = false;

  constructor(private readonly options: LivenessOptions) {}

  start(): void {
    const { pingIntervalMs, idleTimeoutMs } = this.options;
    this.every(Math.max(1, Math.floor(pingIntervalMs / PING_SLICES)), () => this.pingSlice());
    // One sweep over all connections rather than a timer per connection: cheap with ten thousand peers.
    const sweepMs = Math.min(MAX_IDLE_SWEEP_MS, Math.max(MIN_IDLE_SWEEP_MS, Math.floor(idleTimeoutMs / 4)));
    this.every(sweepMs, () => this.sweepIdle());
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) this.options.clock.clearTimeout(timer.handle);
  }

  private pingSlice(): void {
    const { clock, pingIntervalMs } = this.options;
    if (this.cursor >= this.round.length) {
      // A round that ended early (fewer connections than slices) waits out its interval: otherwise a few
      // peers would be pinged, and dropped for a late pong, every interval / PING_SLICES.
      if (clock.now() - this.roundStarted < pingIntervalMs) return;
      this.roundStarted = clock.now();
      this.round = [...this.options.peers()];
      this.cursor = 0;
    }
    const end = Math.min(this.round.length, this.cursor + Math.ceil(this.round.length / PING_SLICES));
    for (; this.cursor < end; this.cursor++) {
      const peer = this.round[this.cursor]!;
      if (!peer.open) continue;
      if (!peer.alive) {
        peer.dropUnresponsive();
        continue;
      }
      peer.alive = false;
      peer.ping();
    }
  }

  private sweepIdle(): void {
    const cutoff = this.options.clock.now() - this.options.idleTimeoutMs;
    for (const peer of this.options.peers()) {
      const since = peer.idleSince;
      if (since !== undefined && since < cutoff) peer.dropIdle();
    }
  }

  /** Runs `work` every `ms` until stop(). */
  private every(ms: number, work: () => void): void {
    const timer: { handle: unknown } = { handle: undefined };
    const arm = (): void => {
      timer.handle = this.options.clock.setTimeout(() => {
        if (this.stopped) return;
        work();
        arm();
      }, ms);
      // Liveness alone must not keep a process alive (Node timers have unref; others need nothing).
      (timer.handle as { unref?: () => void } | undefined)?.unref?.();
    };
    arm();
    this.timers.push(timer);
  }
}
