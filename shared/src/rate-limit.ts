import { Emitter } from './emitter.js';
import { systemClock, type Clock } from './clock.js';
import type { UnderpassError } from './errors.js';
import type { ByteStream, ByteStreamEvents } from './streams/byte-stream.js';

/**
 * Rate limits for code that must run in Node and the browser and be driven by tests: a token bucket measured
 * in any unit (bytes, messages, stream opens), and a stream throttled by one.
 */

export interface TokenBucketOptions {
  /** Tokens added per second. */
  ratePerSecond: number;
  /** Most tokens held at once: the burst allowed after a quiet spell. Defaults to one second's worth. */
  burst?: number;
  clock?: Pick<Clock, 'now'>;
}

/**
 * A token bucket. `tryTake` is for hard limits (refuse what does not fit); `take` is for throttling: it always
 * takes, may leave the bucket in debt, and says how long to wait until the debt is paid.
 */
export class TokenBucket {
  readonly ratePerSecond: number;
  readonly burst: number;
  private tokens: number;
  private last: number;
  private readonly clock: Pick<Clock, 'now'>;

  constructor(options: TokenBucketOptions) {
    if (!(options.ratePerSecond > 0)) throw new RangeError('a token bucket needs a positive rate');
    this.ratePerSecond = options.ratePerSecond;
    this.burst = options.burst ?? options.ratePerSecond;
    if (!(this.burst > 0)) throw new RangeError('a token bucket needs a positive burst');
    this.clock = options.clock ?? systemClock;
    this.tokens = this.burst;
    this.last = this.clock.now();
  }

  /** Tokens available now (negative while in debt). */
  available(): number {
    this.refill();
    return this.tokens;
  }

  /** Takes `amount` if it is all there; otherwise takes nothing and returns false. */
  tryTake(amount = 1): boolean {
    this.refill();
    if (this.tokens < amount) return false;
    this.tokens -= amount;
    return true;
  }

  /** Takes `amount` even into debt; returns the milliseconds until the bucket is out of debt (0 if it is not). */
  take(amount: number): number {
    this.refill();
    this.tokens -= amount;
    return this.waitMs();
  }

  /** Milliseconds until the bucket holds at least zero tokens. */
  waitMs(): number {
    this.refill();
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.ratePerSecond);
  }

  private refill(): void {
    const now = this.clock.now();
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSecond) / 1000);
  }
}

/**
 * Wraps a byte stream so that every byte through it, either way, is paid for from `bucket` (shared by all the
 * streams of one session). When the bucket is in debt, reading stops (`pause`) and `write` answers false,
 * so the usual backpressure — TCP on one side, the mux window on the other — slows the far ends down; no
 * byte is ever dropped or buffered beyond what the wrapped stream itself holds.
 */
export class ThrottledStream extends Emitter<ByteStreamEvents> implements ByteStream {
  private userPaused = true;
  private throttledUntil = 0;
  private timer: unknown;
  /** The wrapped stream asked for a drain we have not passed on yet. */
  private innerBlocked = false;
  /** Our last `write` answered false: the writer waits for our `drain`. */
  private owesDrain = false;

  constructor(
    private readonly inner: ByteStream,
    private readonly bucket: TokenBucket,
    private readonly clock: Clock = systemClock,
  ) {
    super();
    inner.on('data', (chunk) => {
      this.emit('data', chunk);
      this.charge(chunk.length);
    });
    inner.on('end', () => this.emit('end'));
    inner.on('drain', () => {
      this.innerBlocked = false;
      this.maybeDrain();
    });
    inner.on('close', (error) => {
      if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
      this.timer = undefined;
      this.emit('close', error);
    });
  }

  get closed(): boolean {
    return this.inner.closed;
  }

  write(chunk: Uint8Array): boolean {
    const ok = this.inner.write(chunk);
    if (!ok) this.innerBlocked = true;
    this.charge(chunk.length);
    if (ok && !this.isThrottled()) return true;
    this.owesDrain = true;
    return false;
  }

  end(): void {
    this.inner.end();
  }

  destroy(error?: UnderpassError): void {
    this.inner.destroy(error);
  }

  pause(): void {
    this.userPaused = true;
    this.inner.pause();
  }

  resume(): void {
    this.userPaused = false;
    if (!this.isThrottled()) this.inner.resume();
  }

  private isThrottled(): boolean {
    return this.throttledUntil > this.clock.now();
  }

  private charge(bytes: number): void {
    const waitMs = this.bucket.take(bytes);
    if (waitMs === 0 || this.inner.closed) return;
    this.throttledUntil = Math.max(this.throttledUntil, this.clock.now() + waitMs);
    this.inner.pause();
    if (this.timer === undefined) this.schedule(waitMs);
  }

  private schedule(waitMs: number): void {
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.inner.closed) return;
      // Another stream of the session may have spent the refill meanwhile: wait again if so.
      const more = Math.max(this.bucket.waitMs(), this.throttledUntil - this.clock.now());
      if (more > 0) {
        this.throttledUntil = this.clock.now() + more;
        this.schedule(more);
        return;
      }
      this.throttledUntil = 0;
      if (!this.userPaused) this.inner.resume();
      this.maybeDrain();
    }, waitMs);
  }

  private maybeDrain(): void {
    if (this.owesDrain && !this.innerBlocked && !this.isThrottled()) {
      this.owesDrain = false;
      this.emit('drain');
    }
  }
}

/**
 * One token bucket shared by every throttled link of a volunteer: work waits its turn in arrival order and
 * runs when the bucket has the bytes. What waits is bounded by the tunnel's flow-control windows for honest
 * peers; a peer that ignores them overruns its link's queue bound and loses its link.
 */
export class ByteThrottle {
  private readonly bucket: TokenBucket;
  private readonly queue: { bytes: number; run: () => void }[] = [];
  private timer: unknown;

  constructor(
    bytesPerSec: number,
    private readonly clock: Clock = systemClock,
  ) {
    // A cell is at most a few tens of KiB; the bucket must hold at least one, or nothing would ever pass.
    this.bucket = new TokenBucket({
      ratePerSecond: bytesPerSec,
      burst: Math.max(64 * 1024, Math.floor(bytesPerSec / 4)),
      clock,
    });
  }

  /** Runs `run` once `bytes` fit the budget: now if nothing waits and there are tokens. */
  take(bytes: number, run: () => void): void {
    this.queue.push({ bytes, run });
    this.pump();
  }

  clear(): void {
    this.queue.length = 0;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private pump(): void {
    if (this.timer !== undefined) return;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const cost = Math.min(head.bytes, this.bucket.burst);
      if (!this.bucket.tryTake(cost)) {
        const missing = cost - this.bucket.available();
        this.timer = this.clock.setTimeout(
          () => {
            this.timer = undefined;
            this.pump();
          },
          Math.ceil((missing * 1000) / this.bucket.ratePerSecond),
        );
        return;
      }
      this.queue.shift();
      head.run();
    }
  }
}
