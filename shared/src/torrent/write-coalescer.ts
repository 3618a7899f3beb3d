import type { ByteStream } from '../streams/byte-stream.js';
import { MAX_DATA_PAYLOAD } from '../tunnel/mux-frames.js';

/** Runs a task later, after the code that is running now and everything it queued as microtasks. */
export type Defer = (task: () => void) => void;

/** What `endOfTurnIn` looks for in a global scope. */
export interface DeferScope {
  setImmediate?: (task: () => void) => unknown;
  MessageChannel?: new () => {
    port1: { onmessage: (() => void) | null };
    port2: { postMessage(message: unknown): void };
  };
}

/**
 * Runs a task at the end of the current event-loop turn: `setImmediate` in Node (after this turn's I/O callbacks, so the
 * blocks of several disk reads that complete together share a write), a MessageChannel message in the browser
 * (a task, but without the 4 ms clamp that nested `setTimeout(0)` gets), `setTimeout(0)` elsewhere.
 */
export const endOfTurn: Defer = (task) => (endOfTurnHere ??= endOfTurnIn(globalThis as DeferScope))(task);
let endOfTurnHere: Defer | undefined;

/** The end of the turn as `scope` offers it (endOfTurn uses the global scope; tests pass others). */
export function endOfTurnIn(scope: DeferScope): Defer {
  const immediate = scope.setImmediate;
  if (immediate) return (task) => void immediate(task);
  const Channel = scope.MessageChannel;
  if (!Channel) return (task) => void setTimeout(task, 0);
  const tasks: (() => void)[] = [];
  const channel = new Channel();
  channel.port1.onmessage = () => {
    for (const task of tasks.splice(0)) task();
  };
  return (task) => {
    if (tasks.push(task) === 1) channel.port2.postMessage(undefined);
  };
}

export interface WriteCoalescerOptions {
  stream: ByteStream;
  /** Bytes in one write to the stream when there is that much: one full DATA frame (one cell) of the mux. */
  cellBytes?: number;
  defer?: Defer;
}

/**
 * Gathers small writes into cell-sized ones. The BitTorrent wire writes each message as it makes it — a 13-byte
 * piece header, then its 16 KiB block, then the next header, and 17-byte requests one by one — and a mux stream
 * sends each write as its own DATA frame when the link has room, so a torrent stream moved about three cells per
 * block where a `tcp` stream moves one per 60 KiB: a DataChannel's cost is per message, at every hop. Here what
 * is written goes to the stream in full cells at once and the rest at the end of the turn.
 *
 * Backpressure stays exact: once the stream says no (`write` false), the writer's callback is held until its
 * `drain`, so the writer stops as it did before; what is held here is at most one cell and one write.
 */
export class WriteCoalescer {
  private readonly stream: ByteStream;
  private readonly cellBytes: number;
  private readonly defer: Defer;
  private readonly pending: Uint8Array[] = [];
  private pendingBytes = 0;
  /** The stream said no: nothing more goes to it before its `drain`. */
  private blocked = false;
  private scheduled = false;
  /** The writer's callback, held while the stream is blocked. */
  private held: (() => void) | undefined;
  /** `end` was called: called back once everything pending is written and the stream is ended. */
  private ending: (() => void) | undefined;
  private discarded = false;

  constructor(options: WriteCoalescerOptions) {
    this.stream = options.stream;
    this.cellBytes = options.cellBytes ?? MAX_DATA_PAYLOAD;
    this.defer = options.defer ?? endOfTurn;
  }

  /** Bytes taken and not yet written to the stream. */
  get pendingLength(): number {
    return this.pendingBytes;
  }

  /** Takes `chunk`; `done` is called when the writer may write again (at once, unless the stream pushes back). */
  write(chunk: Uint8Array, done: () => void): void {
    if (this.discarded) return done();
    if (chunk.length > 0) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
    if (!this.blocked) this.writeFullCells();
    if (!this.blocked) return done();
    // A streamx writer waits for `done` before its next write; another writer might not: keep every callback.
    const previous = this.held;
    this.held = previous
      ? () => {
          previous();
          done();
        }
      : done;
  }

  /** Writes what is pending, then ends the stream; `done` is called once it is ended. */
  end(done: () => void): void {
    if (this.discarded) return done();
    this.ending = done;
    this.finishIfIdle();
  }

  /** Forgets what is pending (the stream is being destroyed); no callback is called after this. */
  discard(): void {
    this.discarded = true;
    this.pending.length = 0;
    this.pendingBytes = 0;
    this.held = undefined;
    this.ending = undefined;
  }

  private writeFullCells(): void {
    const full = this.pendingBytes - (this.pendingBytes % this.cellBytes);
    if (full > 0) this.send(full);
    if (this.pendingBytes > 0 && !this.scheduled) {
      this.scheduled = true;
      this.defer(() => {
        this.scheduled = false;
        this.writeRest();
      });
    }
  }

  /** The end of the turn: what is still pending goes out, however short. */
  private writeRest(): void {
    if (this.discarded || this.blocked || this.pendingBytes === 0) return;
    this.send(this.pendingBytes);
    this.finishIfIdle();
  }

  private send(bytes: number): void {
    if (bytes === 0) return;
    if (this.stream.closed) {
      // Nowhere to go: dropped. The writer is not held back, and an `end` still completes.
      this.pending.length = 0;
      this.pendingBytes = 0;
      return;
    }
    if (this.stream.write(this.take(bytes))) return;
    this.blocked = true;
    this.stream.once('drain', () => this.onDrain());
  }

  private onDrain(): void {
    if (this.discarded) return;
    this.blocked = false;
    if (!this.ending) this.writeFullCells();
    if (this.blocked) return;
    const held = this.held;
    this.held = undefined;
    held?.();
    this.finishIfIdle();
  }

  private finishIfIdle(): void {
    if (!this.ending || this.blocked) return;
    if (this.pendingBytes > 0) {
      this.send(this.pendingBytes);
      if (this.blocked) return;
    }
    const ending = this.ending;
    this.ending = undefined;
    if (!this.stream.closed) this.stream.end();
    ending();
  }

  /** The next `bytes` pending bytes as one chunk: the first chunk itself (or a view) when it holds them all. */
  private take(bytes: number): Uint8Array {
    this.pendingBytes -= bytes;
    const head = this.pending[0]!;
    if (head.length >= bytes) {
      if (head.length === bytes) this.pending.shift();
      else this.pending[0] = head.subarray(bytes);
      return head.subarray(0, bytes);
    }
    const joined = new Uint8Array(bytes);
    let filled = 0;
    while (filled < bytes) {
      const chunk = this.pending[0]!;
      const taken = Math.min(chunk.length, bytes - filled);
      joined.set(chunk.subarray(0, taken), filled);
      filled += taken;
      if (taken === chunk.length) this.pending.shift();
      else this.pending[0] = chunk.subarray(taken);
    }
    return joined;
  }
}
