import type { Clock } from '../clock.js';

/**
 * How much faster than the link delivers a sender may hand it bytes: above the 1.3 × a round trip receive windows
 * grow by (tunnel/receive-window.ts), so growth is not held back; low enough that a burst builds at most a third
 * of its size in the bottleneck's queue, with room for a rate sample read high (receipts come in bursts too).
 */
export const PACING_GAIN = 1.5;
/**
 * What may go out at once, unpaced: a page's requests and their answers, a first window of a stream. Also the
 * least a pacer allows per round trip, so a link that was idle (and so measured a low rate) starts at this.
 */
export const PACING_BURST_BYTES = 256 * 1024;
/** How many of the latest delivery-rate samples (one per round trip) the pacer takes the highest of. */
const RATE_SAMPLES = 8;
/** Shortest stretch a delivery rate is measured over: one event-loop turn's burst of receipts is no rate. */
const MIN_SAMPLE_MS = 10;

export interface PacerOptions {
  clock: Pick<Clock, 'now'>;
  /** See PACING_GAIN. */
  gain?: number;
  /** See PACING_BURST_BYTES. */
  burstBytes?: number;
}

/**
 * Paces what a sender hands a link to the rate the link delivers: a token bucket filled at PACING_GAIN × the
 * highest rate the far end receipted over one round trip, in the latest RATE_SAMPLES round trips. Why: a burst
 * larger than a bottleneck's queue overflows it whatever the path's bandwidth — eight streams starting at once,
 * or what queued at a sender while its event loop stalled — and libwebrtc's SCTP crawls after losing a burst
 * (bench/wan/README.md). Knows nothing of links; told what was delivered and asked what may go out.
 */
export class Pacer {
  private readonly clock: Pick<Clock, 'now'>;
  private readonly gain: number;
  private readonly burstBytes: number;
  private readonly samples: number[] = [];
  private sampleStart: { at: number; delivered: number } | undefined;
  private tokens: number;
  private filledAt: number;
  private roundTripMs = Infinity;

  constructor(options: PacerOptions) {
    this.clock = options.clock;
    this.gain = options.gain ?? PACING_GAIN;
    this.burstBytes = options.burstBytes ?? PACING_BURST_BYTES;
    this.tokens = this.burstBytes;
    this.filledAt = this.clock.now();
  }

  /** The highest delivery rate of the latest samples, bytes per ms; undefined before one round trip was. */
  get deliveryRate(): number | undefined {
    return this.samples.length === 0 ? undefined : Math.max(...this.samples);
  }

  /** Bytes per ms the bucket fills at; Infinity (no pacing) until a delivery rate was measured. */
  get pacingRate(): number {
    const delivered = this.deliveryRate;
    if (delivered === undefined) return Infinity;
    return Math.max(this.gain * delivered, this.burstBytes / this.roundTripMs);
  }

  /**
   * The far end has receipted `delivered` bytes in all so far; `roundTripMs` is the link's shortest round trip.
   * Each stretch of at least a round trip is one rate sample.
   */
  noteDelivered(delivered: number, roundTripMs: number): void {
    this.roundTripMs = roundTripMs;
    const now = this.clock.now();
    const start = this.sampleStart;
    if (!start) {
      this.sampleStart = { at: now, delivered };
      return;
    }
    const elapsed = now - start.at;
    if (elapsed < Math.max(roundTripMs, MIN_SAMPLE_MS)) return;
    this.samples.push((delivered - start.delivered) / elapsed);
    if (this.samples.length > RATE_SAMPLES) this.samples.shift();
    this.sampleStart = { at: now, delivered };
  }

  /** Milliseconds until `bytes` may go out (0: now). */
  waitFor(bytes: number): number {
    this.fill();
    const missing = Math.min(bytes, this.burstBytes) - this.tokens;
    if (missing <= 0) return 0;
    return Math.max(1, Math.ceil(missing / this.pacingRate));
  }

  /** `bytes` go out now. */
  take(bytes: number): void {
    this.fill();
    this.tokens -= bytes;
  }

  private fill(): void {
    const now = this.clock.now();
    const rate = this.pacingRate;
    this.tokens =
      rate === Infinity
        ? this.burstBytes
        : Math.min(this.burstBytes, this.tokens + (now - this.filledAt) * rate);
    this.filledAt = now;
  }
}
