import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Emitter } from '@underpass/shared/emitter';
import type { UnderpassError } from '@underpass/shared/errors';
import type { ByteStream, ByteStreamEvents } from '@underpass/shared/streams';
import { startSwarm, type LocalSwarm } from '../../test/swarm/swarm.js';
import { UserClient } from '../../test/swarm/user-client.js';
import { startService, torrentRequest } from './torrent-helpers.js';

/**
 * An exit that corrupts a piece on its way to the user cannot slip bad data in: the user's client checks
 * every piece against the infohash, rejects the tampered one, fetches it again, and ends with the right files.
 */

/** BitTorrent's handshake: 1 + 19 ("BitTorrent protocol") + 8 reserved + 20 infohash + 20 peer id. */
const HANDSHAKE_BYTES = 68;
const PIECE_MESSAGE = 7;

/** The exit's side of the user's stream, seen by the user, with one byte flipped in one `piece` message. */
class PieceTamperer extends Emitter<ByteStreamEvents> implements ByteStream {
  tampered = 0;
  private pending: Uint8Array = new Uint8Array(0);
  private handshakeSeen = false;

  constructor(
    private readonly inner: ByteStream,
    private readonly pieceIndex: number,
  ) {
    super();
    inner.on('data', (chunk) => this.feed(chunk));
    inner.on('end', () => this.emit('end'));
    inner.on('drain', () => this.emit('drain'));
    inner.on('close', (error) => this.emit('close', error));
  }

  get closed(): boolean {
    return this.inner.closed;
  }
  write(chunk: Uint8Array): boolean {
    return this.inner.write(chunk);
  }
  end(): void {
    this.inner.end();
  }
  destroy(error?: UnderpassError): void {
    this.inner.destroy(error);
  }
  pause(): void {
    this.inner.pause();
  }
  resume(): void {
    this.inner.resume();
  }

  /** Passes on whole messages only, so that a piece message is seen whole. */
  private feed(chunk: Uint8Array): void {
    this.pending = concat([this.pending, chunk]);
    const out: Uint8Array[] = [];
    for (;;) {
      if (!this.handshakeSeen) {
        if (this.pending.length < HANDSHAKE_BYTES) break;
        out.push(this.take(HANDSHAKE_BYTES));
        this.handshakeSeen = true;
        continue;
      }
      if (this.pending.length < 4) break;
      const view = new DataView(this.pending.buffer, this.pending.byteOffset);
      const length = view.getUint32(0);
      if (this.pending.length < 4 + length) break;
      const message = this.take(4 + length);
      const header = new DataView(message.buffer, message.byteOffset);
      if (
        this.tampered === 0 &&
        length > 9 &&
        message[4] === PIECE_MESSAGE &&
        header.getUint32(5) === this.pieceIndex
      ) {
        message[13] = message[13]! ^ 0xff; // the block's first byte
        this.tampered += 1;
      }
      out.push(message);
    }
    if (out.length > 0) this.emit('data', concat(out));
  }

  private take(count: number): Uint8Array {
    const taken = this.pending.slice(0, count);
    this.pending = this.pending.slice(count);
    return taken;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  const result = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    result.set(part, offset);
    offset += part.length;
  }
  return result;
}

let swarm: LocalSwarm;
const cleanup: (() => Promise<void>)[] = [];
beforeAll(async () => {
  swarm = await startSwarm({ aria2: false });
}, 30_000);
afterAll(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  await swarm?.stop();
});

describe('a tampering exit', () => {
  it('cannot slip a bad piece in: the user rejects it, fetches it again and gets the right files', async () => {
    const exit = await startService(swarm.allowDestinations);
    cleanup.push(exit.stop);
    const userClient = await UserClient.create();
    cleanup.push(() => userClient.stop());
    const stream = await exit.service.dial(
      torrentRequest({
        infoHash: swarm.content.infoHash,
        trackers: [swarm.tracker.httpUrl],
        files: [],
      }),
      { sessionId: 1 },
    );
    const tamperer = new PieceTamperer(stream, 1);

    const torrent = await userClient.download(swarm.magnet(), tamperer);

    expect(tamperer.tampered).toBe(1);
    expect(userClient.warnings.some((warning) => /Piece 1 failed verification/.test(warning))).toBe(true);
    expect(await userClient.hashes(torrent)).toEqual(
      Object.fromEntries(swarm.content.files.map((f) => [f.path, f.sha256])),
    );
  });
});
