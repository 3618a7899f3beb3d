import { describe, expect, it } from 'vitest';
import { StreamError } from '@underpass/shared/errors';
import { byteStreamPair } from '../src/torrent/index.js';

describe('byteStreamPair', () => {
  it('carries bytes both ways once resumed, with backpressure and a drain', async () => {
    const [a, b] = byteStreamPair();
    const received: number[] = [];
    b.on('data', (chunk) => received.push(chunk.length));
    let accepted = true;
    let written = 0;
    while (accepted) {
      accepted = a.write(new Uint8Array(64 * 1024));
      written += 64 * 1024;
    }
    expect(written).toBeLessThanOrEqual(512 * 1024); // the high-water mark holds the writer back
    const drained = new Promise<void>((resolve) => a.once('drain', resolve));
    b.resume();
    await drained;
    expect(received.reduce((sum, n) => sum + n, 0)).toBe(written);
  });

  it('half-closes each way and closes cleanly when both ends ended', async () => {
    const [a, b] = byteStreamPair();
    const closed = new Promise<unknown>((resolve) => a.once('close', resolve));
    const ended = new Promise<void>((resolve) => b.once('end', resolve));
    a.resume();
    b.resume();
    a.end();
    await ended;
    expect(a.closed).toBe(false);
    b.end();
    expect(await closed).toBeUndefined();
    expect(b.closed).toBe(true);
  });

  it('destroys both ends with the same error', async () => {
    const [a, b] = byteStreamPair();
    const closed = new Promise<unknown>((resolve) => b.once('close', resolve));
    a.destroy(new StreamError('limit', 'too many'));
    expect(((await closed) as StreamError).code).toBe('limit');
    expect(a.closed && b.closed).toBe(true);
    expect(a.write(new Uint8Array(1))).toBe(false);
  });
});
