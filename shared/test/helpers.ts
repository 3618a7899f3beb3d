import { Emitter } from '../src/emitter.js';
import type { ByteStream, ByteStreamEvents } from '../src/streams/byte-stream.js';
import type { UnderpassError } from '../src/errors.js';
import type { Dialer } from '../src/exit/exit-engine.js';
import { StreamError } from '../src/errors.js';

/** An in-memory "website" for unit tests: echoes what it is sent, ends when the writer ends. */
export class EchoStream extends Emitter<ByteStreamEvents> implements ByteStream {
  closed = false;
  private paused = true;
  private ending = false;
  private readonly held: Uint8Array[] = [];

  write(chunk: Uint8Array): boolean {
    if (this.closed) return false;
    const copy = chunk.slice();
    queueMicrotask(() => {
      if (this.paused || this.held.length > 0) this.held.push(copy);
      else this.emit('data', copy);
    });
    return true;
  }
  end(): void {
    queueMicrotask(() => {
      this.ending = true;
      this.maybeEnd();
    });
  }
  destroy(error?: UnderpassError): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', error);
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
    while (!this.paused && this.held.length) this.emit('data', this.held.shift()!);
    this.maybeEnd();
  }
  /** The end comes after every byte written before it, however long a paused reader held them. */
  private maybeEnd(): void {
    if (!this.ending || this.paused || this.held.length > 0 || this.closed) return;
    this.emit('end');
    this.destroy();
  }
}

/** Dials an echo for any host, except names listed in `refuse`, which fail with that code. */
export function echoDialer(refuse: Record<string, StreamError['code']> = {}): Dialer & { dials: string[] } {
  const dials: string[] = [];
  return {
    dials,
    async dial(request) {
      // An echo stands for a TCP destination only; an exit without a torrent service refuses the rest so.
      if (request.kind !== 'tcp') throw new StreamError('torrents-off');
      dials.push(`${request.host}:${request.port}`);
      const code = refuse[request.host];
      if (code) throw new StreamError(code);
      return new EchoStream();
    },
  };
}

export function collect(stream: ByteStream): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    stream.on('data', (chunk) => chunks.push(chunk));
    stream.on('close', (error) => {
      if (error) reject(error);
      else {
        const total = chunks.reduce((n, c) => n + c.length, 0);
        const out = new Uint8Array(total);
        let offset = 0;
        for (const chunk of chunks) {
          out.set(chunk, offset);
          offset += chunk.length;
        }
        resolve(out);
      }
    });
    stream.resume();
  });
}

export function pattern(length: number, seed = 7): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

export function nextEvent<T extends unknown[]>(
  emitter: { once(event: string, listener: (...args: T) => void): unknown },
  event: string,
): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (...args: T) => resolve(args)));
}

/**
 * Just enough of simple-peer to drive a PeerLink or a PeerConnector by hand: records what is signalled and
 * sent, and emits what simple-peer would when the test says so. simple-peer closes after `destroy()`; the
 * fake does too when asked to.
 */
export class FakePeer extends Emitter<{
  signal: [unknown];
  connect: [];
  data: [Uint8Array];
  close: [];
  error: [Error];
  end: [];
}> {
  readonly bufferSize = 0;
  readonly signals: unknown[] = [];
  readonly sent: Uint8Array[] = [];
  destroyed = false;
  closed = false;

  constructor(private readonly behaviour: { closeWhenDestroyed?: boolean } = {}) {
    super();
  }

  signal(data: unknown): void {
    this.signals.push(data);
  }
  send(data: Uint8Array): void {
    this.sent.push(data);
  }
  receive(data: Uint8Array): void {
    this.emit('data', data);
  }
  connectNow(): void {
    this.emit('connect');
  }
  /** What simple-peer emits for the broker to carry (an offer, an answer, a candidate). */
  signalOut(data: unknown): void {
    this.emit('signal', data);
  }
  fail(error: Error): void {
    this.emit('error', error);
  }
  closeNow(): void {
    this.emit('close');
  }
  /** What simple-peer 10 emits first as it tears itself down: the end of its stream. */
  endNow(): void {
    this.emit('end');
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (!this.behaviour.closeWhenDestroyed) return;
    queueMicrotask(() => {
      this.closed = true;
      this.emit('close');
    });
  }
}
