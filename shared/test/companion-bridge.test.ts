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
function early(
  stream: ByteStream,
  opened: Promise<void> = new Promise<void>(() => {}),
): EarlyOpen<ByteStream> {
  return { stream, opened };
}

const noStream = (): Promise<ByteStream> => Promise.reject(new Error('open() was not to be called'));

/** The extension's bridge on one end of a link, the companion's initiating mux on the other. */
function setup(
  open: (request: StreamRequest) => Promise<ByteStream>,
  openEarly?: (request: StreamRequest) => EarlyOpen<ByteStream> | undefined,
) {
  const [extensionEnd, companionEnd] = memoryLinkPair();
  const requests: StreamRequest[] = [];
  const bridge = bridgeCompanion({
    link: extensionEnd,
    open: (request) => {
      requests.push(request);
      return open(request);
    },
    ...(openEarly ? { openEarly } : {}),
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
    const { companion, requests } = setup(() => Promise.resolve(new EchoStream()));
    const stream = await companion.open(REQUEST);
    expect(requests).toEqual([REQUEST]);
    const echoed = collect(stream);
    stream.write(new TextEncoder().encode('through the tunnel'));
    stream.end();
    expect(new TextDecoder().decode(await echoed)).toBe('through the tunnel');
  });

  it('refuses the stream with the tunnel’s error code, and with unreachable for anything untyped', async () => {
    const refusals: unknown[] = [new StreamError('policy-denied'), new Error('no path')];
    const { companion } = setup(() => Promise.reject(refusals.shift()));
    await expect(companion.open(REQUEST)).rejects.toMatchObject({ code: 'policy-denied' });
    await expect(companion.open(REQUEST)).rejects.toMatchObject({ code: 'unreachable' });
  });

  it('refuses a torrent stream from the companion without opening anything: it carries SOCKS connections only', async () => {
    const { companion, requests } = setup(() => Promise.resolve(new EchoStream()));
    const torrent: StreamRequest = { kind: 'torrent', infoHash: 'a'.repeat(40), trackers: [], files: [] };
    await expect(companion.open(torrent)).rejects.toMatchObject({ code: 'protocol' });
    expect(requests).toEqual([]);
  });

  it('destroys a tunnel stream that arrives after the companion’s stream is gone', async () => {
    let resolveOpen: (stream: ByteStream) => void = () => {};
    const { companion, companionEnd, requests } = setup(
      () => new Promise<ByteStream>((resolve) => (resolveOpen = resolve)),
    );
    const opening = companion.open(REQUEST).catch((error: unknown) => error);
    await waitUntil(() => requests.length === 1);
    companionEnd.close();
    expect(await opening).toBeInstanceOf(StreamError);
    const late = new HandStream();
    resolveOpen(late);
    await waitUntil(() => late.closed);
    expect(late.closed).toBe(true);
  });

  it('early: answers before the exit does, so the first bytes travel at once; the exit’s refusal then resets the stream with its code', async () => {
    const tunnel = new HandStream();
    const { companion } = setup(noStream, () => early(tunnel));
    const stream = await companion.open(REQUEST);
    stream.resume();
    stream.write(new TextEncoder().encode('GET / HTTP/1.1'));
    await waitUntil(() => tunnel.written.length === 1);
    expect(new TextDecoder().decode(tunnel.written[0])).toBe('GET / HTTP/1.1');
    const closed = new Promise<unknown>((resolve) => stream.once('close', resolve));
    tunnel.destroy(new StreamError('policy-denied'));
    expect(await closed).toMatchObject({ code: 'policy-denied' });
  });

  it('early: refuses at once when no tunnel stream can start (the kill switch), with its code', async () => {
    const { companion, requests } = setup(noStream, () => {
      throw new StreamError('unreachable', 'no path is up');
    });
    await expect(companion.open(REQUEST)).rejects.toMatchObject({ code: 'unreachable' });
    expect(requests).toEqual([]);
  });

  it('early: waits for the exit’s answer where the engine says so (a destination refused lately), so the refusal is the SOCKS reply', async () => {
    const { companion, requests } = setup(
      () => Promise.reject(new StreamError('dns-failed')),
      () => undefined,
    );
    await expect(companion.open(REQUEST)).rejects.toMatchObject({ code: 'dns-failed' });
    expect(requests).toEqual([REQUEST]);
  });

  it('early: ends the tunnel stream when the companion’s stream ends first', async () => {
    const tunnel = new HandStream();
    const { companion } = setup(noStream, () => early(tunnel));
    const stream = await companion.open(REQUEST);
    stream.destroy();
    await waitUntil(() => tunnel.closed);
    expect(tunnel.closed).toBe(true);
  });

  it('holds DATA while the link is congested and sends it on drain', async () => {
    const tunnel = new HandStream();
    const { companion, extensionEnd } = setup(() => Promise.resolve(tunnel));
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
    const first = setup(() => Promise.resolve(new EchoStream()));
    first.companionEnd.close(new SessionError('malformed-frame'));
    await waitUntil(() => first.bridge.closed);
    expect(first.extensionEnd.closed).toBe(true);

    const second = setup(() => Promise.resolve(new EchoStream()));
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
