import { describe, expect, it } from 'vitest';
import { Emitter } from '../src/emitter.js';
import type { ByteStream, ByteStreamEvents } from '../src/streams/byte-stream.js';
import { WriteCoalescer, endOfTurn, endOfTurnIn, type DeferScope } from '../src/torrent/write-coalescer.js';

/** A stream that records each write and says no once `room` bytes are waiting, until `drain()`. */
class RecordingStream extends Emitter<ByteStreamEvents> implements ByteStream {
  readonly writes: Uint8Array[] = [];
  closed = false;
  ended = false;
  waiting = 0;

  constructor(private readonly room = Infinity) {
    super();
  }

  write(chunk: Uint8Array): boolean {
    this.writes.push(chunk.slice());
    this.waiting += chunk.length;
    return this.waiting < this.room;
  }
  drain(): void {
    this.waiting = 0;
    this.emit('drain');
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.closed = true;
  }
  pause(): void {}
  resume(): void {}
}

/** A defer the test runs by hand: the end of the turn is when the test says. */
function manualDefer() {
  const tasks: (() => void)[] = [];
  return {
    defer: (task: () => void) => void tasks.push(task),
    endTurn: () => tasks.splice(0).forEach((task) => task()),
    get pending() {
      return tasks.length;
    },
  };
}

const bytes = (length: number, fill: number) => new Uint8Array(length).fill(fill);
const joined = (chunks: Uint8Array[]) => Uint8Array.from(chunks.flatMap((chunk) => [...chunk]));

describe('WriteCoalescer', () => {
  it('gathers the small writes of one turn into one write, in order', () => {
    const stream = new RecordingStream();
    const turn = manualDefer();
    const writes = new WriteCoalescer({ stream, cellBytes: 100, defer: turn.defer });
    const done: number[] = [];
    const chunks = [bytes(13, 1), bytes(40, 2), bytes(17, 3)];
    chunks.forEach((chunk, index) => writes.write(chunk, () => done.push(index)));
    expect(done).toEqual([0, 1, 2]); // the writer is never held while the stream has room
    expect(stream.writes).toHaveLength(0);
    expect(turn.pending).toBe(1); // one flush per turn, however many writes
    turn.endTurn();
    expect(stream.writes).toHaveLength(1);
    expect(stream.writes[0]).toEqual(joined(chunks));
  });

  it('writes full cells at once and keeps only the rest for the end of the turn', () => {
    const stream = new RecordingStream();
    const turn = manualDefer();
    const writes = new WriteCoalescer({ stream, cellBytes: 100, defer: turn.defer });
    const chunks = [bytes(60, 1), bytes(60, 2), bytes(130, 3)];
    for (const chunk of chunks) writes.write(chunk, () => {});
    // 60 waits; 120 → one cell of 100 now, 20 wait; 150 → one cell of 100 now, 50 wait.
    expect(stream.writes.map((write) => write.length)).toEqual([100, 100]);
    expect(writes.pendingLength).toBe(50);
    turn.endTurn();
    expect(stream.writes.map((write) => write.length)).toEqual([100, 100, 50]);
    expect(joined(stream.writes)).toEqual(joined(chunks));
  });

  it('holds the writer while the stream pushes back, and lets it go on the drain', () => {
    const stream = new RecordingStream(150);
    const turn = manualDefer();
    const writes = new WriteCoalescer({ stream, cellBytes: 100, defer: turn.defer });
    let released = 0;
    writes.write(bytes(100, 1), () => released++); // a full cell: written, the stream still has room
    writes.write(bytes(100, 2), () => released++); // a second: the stream says no
    expect(released).toBe(1);
    writes.write(bytes(10, 3), () => released++); // a writer that does not wait is not lost either
    turn.endTurn();
    expect(stream.writes).toHaveLength(2); // nothing goes to a stream that said no
    expect(writes.pendingLength).toBe(10);
    stream.drain();
    expect(released).toBe(3);
    turn.endTurn();
    expect(joined(stream.writes)).toEqual(joined([bytes(100, 1), bytes(100, 2), bytes(10, 3)]));
  });

  it('ends the stream after what is pending, waiting for a drain when it must', () => {
    const stream = new RecordingStream(20);
    const turn = manualDefer();
    const writes = new WriteCoalescer({ stream, cellBytes: 100, defer: turn.defer });
    writes.write(bytes(30, 1), () => {});
    turn.endTurn(); // written; the stream is now full
    writes.write(bytes(5, 2), () => {});
    let ended = false;
    writes.end(() => (ended = true));
    expect(ended).toBe(false);
    expect(stream.ended).toBe(false);
    stream.drain();
    expect(ended).toBe(true);
    expect(stream.ended).toBe(true);
    expect(joined(stream.writes)).toEqual(joined([bytes(30, 1), bytes(5, 2)]));
  });

  it('drops what is pending when discarded or when the stream closed, and calls nothing after a discard', () => {
    const stream = new RecordingStream();
    const turn = manualDefer();
    const writes = new WriteCoalescer({ stream, cellBytes: 100, defer: turn.defer });
    writes.write(bytes(10, 1), () => {});
    stream.closed = true;
    turn.endTurn();
    expect(stream.writes).toHaveLength(0);
    let ended = false;
    writes.end(() => (ended = true)); // a closed stream still lets the writer finish
    expect(ended).toBe(true);

    const other = new RecordingStream();
    const discarded = new WriteCoalescer({ stream: other, cellBytes: 100, defer: turn.defer });
    discarded.write(bytes(10, 1), () => {});
    discarded.discard();
    turn.endTurn();
    expect(other.writes).toHaveLength(0);
    expect(discarded.pendingLength).toBe(0);
  });

  it.each([
    ['this scope (Node: setImmediate)', undefined],
    ["a browser's (MessageChannel)", { MessageChannel } as DeferScope],
    ['a bare one (setTimeout)', {} as DeferScope],
  ])('runs deferred tasks after the current code and its microtasks, in order: %s', async (_name, scope) => {
    const defer = scope ? endOfTurnIn(scope) : endOfTurn;
    const order: string[] = [];
    await new Promise<void>((resolve) => {
      defer(() => order.push('first'));
      defer(() => {
        order.push('second');
        resolve();
      });
      queueMicrotask(() => order.push('microtask'));
      order.push('now');
    });
    expect(order).toEqual(['now', 'microtask', 'first', 'second']);
    // Later turns work too (a browser's channel is reused, not spent).
    await new Promise<void>((resolve) => defer(resolve));
  });
});
