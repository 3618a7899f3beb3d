import { describe, expect, it } from 'vitest';
import { Emitter } from '../src/emitter.js';
import { SessionError, StreamError, type UnderpassError } from '../src/errors.js';
import type { ByteStream, ByteStreamEvents } from '../src/streams/byte-stream.js';
import { LINK_HIGH_WATER } from '../src/links/link.js';
import { memoryLinkPair } from '../src/links/memory-link.js';
import { bridgeCompanion } from '../src/data-port/bridge.js';
import { muxOverLink } from '../src/data-port/mux-link.js';
import { decodeMuxFrame, type StreamRequest } from '../src/tunnel/mux-frames.js';
import type { EarlyOpen } from '../src/tunnel/mux.js';
import { collect, EchoStream } from './helpers.js';

/** A tunnel stream the test writes into by hand, synchronously. */
class HandStream extends Emitter<ByteStreamEvents> implements ByteStream {
  closed = false;
  readonly written: Uint8Array[] = [];
  write(chunk: Uint8Array): boolean {
    this.written.push(chunk);
    return true;
  }
  end(): void {}
  destroy(error?: UnderpassError): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', error);
  }
  pause(): void {}
  resume(): void {}
  push(chunk: Uint8Array): void {
    this.emit('data', chunk);
  }
}

const REQUEST: StreamRequest = { kind: 'tcp', host: 'example.com', port: 443 };

/** A tunnel stream as the engine's openEarly hands it over: writable now, the exit's answer still to come. */
function early(stream: ByteStream, opened: Promise<void> = Promise.resolve()): EarlyOpen<ByteStream> {
  return { stream, opened };
}

/** The extension's bridge on one end of a link, the companion's initiating mux on the other. */
function setup(open: (request: StreamRequest) => EarlyOpen<ByteStream>) {
  const [extensionEnd, companionEnd] = memoryLinkPair();
  const requests: StreamRequest[] = [];
  const bridge = bridgeCompanion({
    link: extensionEnd,
    open: (request) => {
      requests.push(request);
      return open(request);
    },
  });
  const companion = muxOverLink(companionEnd, 'initiator');
  return { extensionEnd, companionEnd, bridge, companion, requests };
}

function dataFrames(sent: Uint8Array[]): number {
  return sent.filter((frame) => {
    const decoded = decodeMuxFrame(frame);
    return decoded.ok && decoded.value.type === 'data';
  }).length;
}

describe('bridgeCompanion', () => {
  it('joins each stream the companion opens to the tunnel stream for its request, both ways', async () => {
    const { companion, requests } = setup(() => early(new EchoStream()));
    const stream = await companion.open(REQUEST);
    expect(requests).toEqual([REQUEST]);
    const echoed = collect(stream);
    stream.write(new TextEncoder().encode('through the tunnel'));
    stream.end();
    expect(new TextDecoder().decode(await echoed)).toBe('through the tunnel');
  });

  it('refuses the stream at once when no tunnel stream can start (the kill switch), with its code; unreachable for anything untyped', async () => {
    const refusals: unknown[] = [new StreamError('unreachable', 'no path is up'), new Error('broken')];
    const { companion } = setup(() => {
      throw refusals.shift();
    });
    await expect(companion.open(REQUEST)).rejects.toMatchObject({ code: 'unreachable' });
    refusals.unshift(new StreamError('limit'));
    await expect(companion.open(REQUEST)).rejects.toMatchObject({ code: 'limit' });
    await expect(companion.open(REQUEST)).rejects.toMatchObject({ code: 'unreachable' });
  });

  it('answers before the exit does, so the first bytes travel at once; the exit’s refusal then resets the stream with its code', async () => {
    const tunnel = new HandStream();
    const { companion } = setup(() => early(tunnel, new Promise<void>(() => {})));
    const stream = await companion.open(REQUEST);
    stream.resume();
    stream.write(new TextEncoder().encode('GET / HTTP/1.1'));
    await waitUntil(() => tunnel.written.length === 1);
    expect(new TextDecoder().decode(tunnel.written[0])).toBe('GET / HTTP/1.1');
    const closed = new Promise<unknown>((resolve) => stream.once('close', resolve));
    tunnel.destroy(new StreamError('policy-denied'));
    expect(await closed).toMatchObject({ code: 'policy-denied' });
  });

  it('refuses a torrent stream from the companion without opening anything: it carries SOCKS connections only', async () => {
    const { companion, requests } = setup(() => early(new EchoStream()));
    const torrent: StreamRequest = { kind: 'torrent', infoHash: 'a'.repeat(40), trackers: [], files: [] };
    await expect(companion.open(torrent)).rejects.toMatchObject({ code: 'protocol' });
    expect(requests).toEqual([]);
  });

  it('destroys the tunnel stream when the companion’s stream ends first', async () => {
    const tunnel = new HandStream();
    const { companion } = setup(() => early(tunnel, new Promise<void>(() => {})));
    const stream = await companion.open(REQUEST);
    stream.destroy();
    await waitUntil(() => tunnel.closed);
    expect(tunnel.closed).toBe(true);
  });

  it('holds DATA while the link is congested and sends it on drain', async () => {
    const tunnel = new HandStream();
    const { companion, extensionEnd } = setup(() => early(tunnel));
    const stream = await companion.open(REQUEST);
    const received: number[] = [];
    stream.on('data', (chunk) => received.push(...chunk));
    stream.resume();
    extensionEnd.recordSent = true;
    extensionEnd.simulateBuffered(2 * LINK_HIGH_WATER);
    tunnel.push(new Uint8Array([1, 2, 3]));
    expect(dataFrames(extensionEnd.sent)).toBe(0);
    extensionEnd.simulateBuffered(0);
    expect(dataFrames(extensionEnd.sent)).toBe(1);
    await waitUntil(() => received.length === 3);
    expect(received).toEqual([1, 2, 3]);
  });

  it('closes with its link, and closes the link when closed', async () => {
    const first = setup(() => early(new EchoStream()));
    first.companionEnd.close(new SessionError('malformed-frame'));
    await waitUntil(() => first.bridge.closed);
    expect(first.extensionEnd.closed).toBe(true);

    const second = setup(() => early(new EchoStream()));
    const [error] = await Promise.all([
      new Promise<SessionError | undefined>((resolve) => second.companionEnd.once('close', resolve)),
      Promise.resolve().then(() => second.bridge.close()),
    ]);
    expect(second.bridge.closed).toBe(true);
    expect(second.companion.closed).toBe(true);
    expect(error?.code).toBe('link-closed');
  });
});

/** Memory links deliver in microtasks: wait for the condition a few turns at most, never for a time. */
async function waitUntil(condition: () => boolean): Promise<void> {
  for (let turn = 0; turn < 100 && !condition(); turn++)
    await new Promise((resolve) => setTimeout(resolve, 0));
  if (!condition()) throw new Error('condition not met');
}
