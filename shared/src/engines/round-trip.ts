import type { Clock } from '../clock.js';
import { UnderpassError } from '../errors.js';
import { PING_PAYLOAD_BYTES } from '../tunnel/mux-frames.js';

/** What the meter needs of a session: send a PING, hear PONGs. TunnelClient provides it. */
export interface Echoer {
  ping(payload: Uint8Array): void;
  onPong(listener: (payload: Uint8Array) => void): () => void;
}

export interface RoundTripMeterOptions {
  echoer: Echoer;
  clock: Clock;
}

/**
 * Measures the path's round trip end to end: a PING through every hop to the exit, its PONG back, timed on
 * our clock. One measurement at a time; a PONG that matches no outstanding PING (late, or forged by nobody
 * who can read the session) is ignored.
 */
export class RoundTripMeter {
  private sequence = 0;
  private answers = 0;
  private pending:
    { payload: Uint8Array; resolve: (at: number) => void; reject: (error: Error) => void } | undefined;
  private readonly unsubscribe: () => void;

  constructor(private readonly options: RoundTripMeterOptions) {
    this.unsubscribe = options.echoer.onPong((payload) => this.onPong(payload));
  }

  get measuring(): boolean {
    return this.pending !== undefined;
  }

  /** PINGs answered so far: none yet says nothing of whether the exit answers PING at all. */
  get answered(): number {
    return this.answers;
  }

  /** The round trip in milliseconds; rejects with `timeout` after `timeoutMs`, or if another is under way. */
  measure(timeoutMs: number): Promise<number> {
    if (this.pending) return Promise.reject(new UnderpassError('busy', 'a round trip is being measured'));
    const { clock, echoer } = this.options;
    const payload = new Uint8Array(PING_PAYLOAD_BYTES);
    this.sequence += 1;
    new DataView(payload.buffer).setFloat64(0, this.sequence);
    const started = clock.now();
    return new Promise<number>((resolve, reject) => {
      const timer = clock.setTimeout(() => {
        this.pending = undefined;
        reject(new UnderpassError('timeout', `no answer to a ping within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending = {
        payload,
        resolve: (at) => {
          clock.clearTimeout(timer);
          resolve(Math.max(0, at - started));
        },
        reject: (error) => {
          clock.clearTimeout(timer);
          reject(error);
        },
      };
      echoer.ping(payload);
    });
  }

  /** Stops listening; a measurement under way fails with `closed`. */
  close(): void {
    this.unsubscribe();
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(new UnderpassError('closed', 'the path closed before its round trip was measured'));
  }

  private onPong(payload: Uint8Array): void {
    const pending = this.pending;
    if (!pending || !sameBytes(pending.payload, payload)) return;
    this.pending = undefined;
    this.answers += 1;
    pending.resolve(this.options.clock.now());
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
