import { Emitter } from '@underpass/shared/emitter';
import type { UnderpassError } from '@underpass/shared/errors';
import type { ByteStream, ByteStreamEvents } from '@underpass/shared/streams';

/** Bytes queued at a reader before its writer is told to wait (`write` returns false until `drain`). */
const HIGH_WATER_BYTES = 256 * 1024;

/**
 * Two in-memory ByteStreams joined back to back: what one end writes, the other reads. The torrent service
 * hands one end to the stream router (which pipes it to the user's tunnel stream) and joins the other to its
 * WebTorrent, so the service needs no knowledge of the tunnel. Both ends start paused, like mux streams.
 */
export function byteStreamPair(): [ByteStream, ByteStream] {
  const a = new PairEnd();
  const b = new PairEnd();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

class PairEnd extends Emitter<ByteStreamEvents> implements ByteStream {
  peer!: PairEnd;
  private readonly queue: Uint8Array[] = [];
  private queuedBytes = 0;
  private paused = true;
  private endReceived = false;
  private endEmitted = false;
  private writeEnded = false;
  private writerWaiting = false;
  private flushScheduled = false;
  private isClosed = false;

  get closed(): boolean {
    return this.isClosed;
  }

  write(chunk: Uint8Array): boolean {
    if (this.isClosed || this.writeEnded) return false;
    const accepted = this.peer.receive(chunk);
    if (!accepted) this.writerWaiting = true;
    return accepted;
  }

  end(): void {
    if (this.isClosed || this.writeEnded) return;
    this.writeEnded = true;
    this.peer.endReceived = true;
    this.peer.scheduleFlush();
  }

  destroy(error?: UnderpassError): void {
    if (this.isClosed) return;
    this.finish(error);
    this.peer.finish(error);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (this.isClosed) return;
    this.paused = false;
    this.scheduleFlush();
  }

  private receive(chunk: Uint8Array): boolean {
    this.queue.push(chunk);
    this.queuedBytes += chunk.byteLength;
    this.scheduleFlush();
    return this.queuedBytes < HIGH_WATER_BYTES;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // Delivered on a later tick, never inside the writer's call: no re-entrancy between the two ends.
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (!this.isClosed && !this.paused && this.queue.length > 0) {
      const chunk = this.queue.shift()!;
      this.queuedBytes -= chunk.byteLength;
      this.emit('data', chunk);
    }
    if (this.peer.writerWaiting && this.queuedBytes < HIGH_WATER_BYTES / 2) {
      this.peer.writerWaiting = false;
      this.peer.emit('drain');
    }
    if (!this.isClosed && this.queue.length === 0 && this.endReceived && !this.endEmitted) {
      this.endEmitted = true;
      this.emit('end');
      // Both directions ended cleanly: the pair is done.
      if (this.peer.endEmitted) {
        this.finish(undefined);
        this.peer.finish(undefined);
      }
    }
  }

  private finish(error: UnderpassError | undefined): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.emit('close', error);
  }
}
