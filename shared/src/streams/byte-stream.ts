import type { Emitter } from '../emitter.js';
import type { UnderpassError } from '../errors.js';

export type ByteStreamEvents = {
  /** A chunk arrived. Not emitted while paused. */
  data: [chunk: Uint8Array];
  /** The far side half-closed: no more data will come. */
  end: [];
  /** The write side can take more after `write` returned false. */
  drain: [];
  /** The stream is finished; `error` says why when it did not end cleanly. Emitted once. */
  close: [error?: UnderpassError];
};

/**
 * A duplex byte stream with backpressure: a mux stream, a TCP socket, a SOCKS client. Writers must stop when
 * `write` returns false and continue on `drain`; readers may `pause` to stop `data` events (and so stop the
 * far side through flow control). A stream may start paused (mux streams do, so nothing is emitted before its
 * consumer is attached): call `resume()` once listening. `pipeBoth` does.
 */
export interface ByteStream extends Pick<Emitter<ByteStreamEvents>, 'on' | 'once' | 'off'> {
  write(chunk: Uint8Array): boolean;
  /** Half-close: no more writes from this side. */
  end(): void;
  /** Abort both directions; `error` reaches the far side as a typed reset. */
  destroy(error?: UnderpassError): void;
  pause(): void;
  resume(): void;
  readonly closed: boolean;
}

/**
 * Join two byte streams both ways with backpressure. Returns a promise that settles when both are closed.
 * An error close on either side destroys the other with the same error; a side already closed destroys the other.
 */
export function pipeBoth(a: ByteStream, b: ByteStream): Promise<void> {
  return new Promise((resolve) => {
    let closedCount = 0;
    const onClosed = () => {
      closedCount += 1;
      if (closedCount === 2) resolve();
    };
    const closeWith = (stream: ByteStream, other: ByteStream) => {
      // Closed before the piping began (a stream accepted early and refused at once): its 'close' has been
      // emitted, and the other side would wait for it forever. Why it closed is not known here, so the other
      // is closed without an error.
      if (stream.closed) {
        if (!other.closed) other.destroy();
        onClosed();
        return;
      }
      stream.once('close', (error) => {
        if (error && !other.closed) other.destroy(error);
        onClosed();
      });
    };
    pipeOneWay(a, b);
    pipeOneWay(b, a);
    a.resume();
    b.resume();
    closeWith(a, b);
    closeWith(b, a);
  });
}

function pipeOneWay(from: ByteStream, to: ByteStream): void {
  from.on('data', (chunk) => {
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.on('end', () => {
    if (!to.closed) to.end();
  });
}
