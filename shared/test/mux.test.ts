import { describe, expect, it } from 'vitest';
import { Mux } from '../src/tunnel/mux.js';
import type { MuxStream } from '../src/tunnel/mux-stream.js';
import {
  decodeMuxFrame,
  encodeMuxFrame,
  MAX_DATA_PAYLOAD,
  MAX_MUX_FRAME,
  type MuxFrame,
} from '../src/tunnel/mux-frames.js';
import type { SessionError } from '../src/errors.js';

/** An acceptor mux fed by hand, recording what it sends back. */
function acceptor(initialWindow = 1024, sessionWindow?: number) {
  const sent: MuxFrame[] = [];
  const mux = new Mux({
    role: 'acceptor',
    initialWindow,
    sessionWindow,
    maxStreams: 4,
    send: (bytes) => {
      const decoded = decodeMuxFrame(bytes);
      if (decoded.ok) sent.push(decoded.value);
    },
  });
  const streams: MuxStream[] = [];
  mux.on('stream', (stream) => {
    streams.push(stream);
    stream.accept();
  });
  let closeError: SessionError | undefined;
  mux.on('close', (error) => (closeError = error));
  const feed = (frame: MuxFrame) => mux.receive(encodeMuxFrame(frame));
  const open = (streamId: number) =>
    feed({ type: 'open', streamId, request: { kind: 'tcp', host: 'example.test', port: 443 } });
  return { mux, sent, streams, feed, open, closeError: () => closeError };
}

describe('mux flow control', () => {
  it('packs what queued while the link was congested into full-size DATA frames, in order', () => {
    let congested = false;
    const data: Uint8Array[] = [];
    const mux = new Mux({
      role: 'acceptor',
      initialWindow: 1024 * 1024,
      send: (bytes) => {
        const decoded = decodeMuxFrame(bytes);
        if (decoded.ok && decoded.value.type === 'data') data.push(decoded.value.data.slice());
      },
      canSend: () => !congested,
    });
    const streams: MuxStream[] = [];
    mux.on('stream', (stream) => {
      streams.push(stream);
      stream.accept();
    });
    mux.receive(
      encodeMuxFrame({
        type: 'open',
        streamId: 1,
        request: { kind: 'tcp', host: 'example.test', port: 443 },
      }),
    );
    congested = true;
    const chunks = [0, 1, 2].map((i) => new Uint8Array(64 * 1024).fill(i + 1));
    for (const chunk of chunks) streams[0]!.write(chunk);
    expect(data).toEqual([]);
    congested = false;
    mux.drain();
    expect(data.map((frame) => frame.length)).toEqual([
      MAX_DATA_PAYLOAD,
      MAX_DATA_PAYLOAD,
      MAX_DATA_PAYLOAD,
      12_288,
    ]);
    expect(Buffer.concat(data).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('holds a paused stream’s data within its window and grants credit only as it is consumed', () => {
    const { streams, feed, open, sent, closeError } = acceptor(1024);
    open(1);
    const stream = streams[0]!;
    const received: number[] = [];
    stream.on('data', (chunk) => received.push(chunk.length));
    feed({ type: 'data', streamId: 1, data: new Uint8Array(1000) });
    expect(received).toEqual([]); // streams start paused
    expect(sent.filter((f) => f.type === 'window')).toEqual([]);
    stream.resume();
    expect(received).toEqual([1000]);
    expect(sent.filter((f) => f.type === 'window')).toEqual([
      { type: 'window', streamId: 1, increment: 1000 },
    ]);
    expect(closeError()).toBeUndefined();
  });

  it('ends the session with window-overrun when a peer sends past its window', () => {
    const { feed, open, closeError, mux } = acceptor(1024);
    open(1);
    feed({ type: 'data', streamId: 1, data: new Uint8Array(1000) });
    feed({ type: 'data', streamId: 1, data: new Uint8Array(100) });
    expect(closeError()?.code).toBe('window-overrun');
    expect(mux.closed).toBe(true);
  });

  it('ends the session when a WINDOW frame would grow the window past the maximum', () => {
    const { feed, open, closeError } = acceptor();
    open(1);
    feed({ type: 'window', streamId: 1, increment: 0xffffffff });
    expect(closeError()?.code).toBe('window-overrun');
  });

  it('sends no more DATA on all streams together than the session window, and resumes on a stream-0 WINDOW', () => {
    const { streams, feed, open, sent, closeError } = acceptor(64 * 1024, 100 * 1024);
    for (const id of [1, 2, 3]) open(id);
    for (const stream of streams) stream.write(new Uint8Array(64 * 1024));
    const dataBytes = () =>
      sent.reduce((sum, frame) => sum + (frame.type === 'data' ? frame.data.length : 0), 0);
    // Each stream's own window would allow 64 KiB (192 KiB in all); the session allows 100 KiB.
    expect(dataBytes()).toBe(100 * 1024);
    feed({ type: 'window', streamId: 0, increment: 50 * 1024 });
    expect(dataBytes()).toBe(150 * 1024);
    feed({ type: 'window', streamId: 0, increment: 1024 * 1024 });
    expect(dataBytes()).toBe(192 * 1024);
    expect(closeError()).toBeUndefined();
  });

  it('grants session credit as DATA arrives, even for a paused stream or one already closed', () => {
    const { streams, feed, open, sent, closeError } = acceptor(64 * 1024, 100 * 1024);
    open(1);
    open(2);
    streams[1]!.destroy();
    feed({ type: 'data', streamId: 1, data: new Uint8Array(30 * 1024) }); // paused: not consumed
    feed({ type: 'data', streamId: 2, data: new Uint8Array(30 * 1024) }); // closed: dropped
    const sessionGrants = () => sent.filter((f) => f.type === 'window' && f.streamId === 0);
    expect(sessionGrants()).toEqual([{ type: 'window', streamId: 0, increment: 60 * 1024 }]);
    expect(sent.filter((f) => f.type === 'window' && f.streamId === 1)).toEqual([]);
    expect(closeError()).toBeUndefined();
  });

  it('ends the session with window-overrun when a peer sends past the session window', () => {
    const { feed, open, closeError } = acceptor(64 * 1024, 80 * 1024);
    for (const id of [1, 2]) open(id);
    feed({ type: 'data', streamId: 1, data: new Uint8Array(30 * 1024) }); // below half: no grant yet
    expect(closeError()).toBeUndefined();
    feed({ type: 'data', streamId: 2, data: new Uint8Array(55 * 1024) }); // 85 KiB in transit > 80
    expect(closeError()?.code).toBe('window-overrun');
  });

  it('treats a stream-0 WINDOW as unknown on a mux without a session window (the data port)', () => {
    const { feed, closeError } = acceptor();
    feed({ type: 'window', streamId: 0, increment: 1024 });
    expect(closeError()?.code).toBe('unknown-stream');
  });

  it('refuses opens past the stream limit with a typed error, without ending the session', () => {
    const { open, sent, closeError } = acceptor();
    for (let id = 1; id <= 5; id++) open(id);
    expect(sent.find((f) => f.type === 'open-failed')).toEqual({
      type: 'open-failed',
      streamId: 5,
      code: 'limit',
    });
    expect(closeError()).toBeUndefined();
  });

  it('ignores late frames for a stream it already closed, but not for one never opened', () => {
    const { feed, open, streams, closeError } = acceptor();
    open(1);
    streams[0]!.destroy();
    feed({ type: 'data', streamId: 1, data: new Uint8Array(10) });
    expect(closeError()).toBeUndefined();
    feed({ type: 'fin', streamId: 7 });
    expect(closeError()?.code).toBe('unknown-stream');
  });

  it('rejects truncated, oversized and malformed frames', () => {
    for (const bytes of [
      new Uint8Array([4, 0, 0]),
      new Uint8Array(MAX_MUX_FRAME + 1).fill(4, 0, 1),
      new Uint8Array([5, 0, 0, 0, 1, 0, 0]),
      new Uint8Array([1, 0, 0, 0, 1, 1, 0, 80, 3, 0x61, 0x20, 0x62]), // host with a space
    ]) {
      const { mux, closeError } = acceptor();
      mux.receive(bytes);
      expect(closeError()?.code).toBe('malformed-frame');
    }
  });
});

describe('mux round trip (PING/PONG)', () => {
  it('answers a PING at once with a PONG carrying the same 8 bytes, even while DATA is held', () => {
    const { mux, sent, open } = acceptor();
    open(1);
    sent.length = 0;
    const payload = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    mux.receive(encodeMuxFrame({ type: 'ping', streamId: 0, payload }));
    expect(sent).toEqual([{ type: 'pong', streamId: 0, payload }]);
    expect(mux.closed).toBe(false);
  });

  it('hands a PONG to its listeners and sends PINGs on stream 0', () => {
    const sent: Uint8Array[] = [];
    const mux = new Mux({ role: 'initiator', send: (bytes) => sent.push(bytes) });
    const heard: Uint8Array[] = [];
    mux.on('pong', (payload) => heard.push(payload));
    const payload = new Uint8Array(8).fill(9);
    mux.ping(payload);
    expect(sent.map((bytes) => decodeMuxFrame(bytes))).toEqual([
      { ok: true, value: { type: 'ping', streamId: 0, payload } },
    ]);
    mux.receive(encodeMuxFrame({ type: 'pong', streamId: 0, payload }));
    expect(heard).toEqual([payload]);
  });

  it('ends the session on a PING or PONG with a stream id or a payload other than 8 bytes', () => {
    for (const bytes of [
      new Uint8Array([8, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]),
      new Uint8Array([8, 0, 0, 0, 0, 1, 2, 3]),
      new Uint8Array([9, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
      new Uint8Array([9, 0, 0, 0, 2]),
    ]) {
      const { mux, closeError } = acceptor();
      mux.receive(bytes);
      expect(closeError()?.code).toBe('malformed-frame');
    }
  });
});

/** An initiator and an acceptor joined directly; the acceptor answers opens only when the test says. */
function joined(options: { initialWindow?: number; openTimeoutMs?: number } = {}) {
  const initiatorSent: MuxFrame[] = [];
  // Each side's send reaches the other only once both exist (the first frame is the test's first open).
  const acceptorMux: Mux = new Mux({
    role: 'acceptor',
    initialWindow: options.initialWindow ?? 1024,
    send: (bytes) => initiator.receive(bytes),
  });
  const initiator: Mux = new Mux({
    role: 'initiator',
    initialWindow: options.initialWindow ?? 1024,
    openTimeoutMs: options.openTimeoutMs,
    send: (bytes) => {
      const decoded = decodeMuxFrame(bytes);
      if (decoded.ok) initiatorSent.push(decoded.value);
      acceptorMux.receive(bytes);
    },
  });
  const waiting: MuxStream[] = [];
  acceptorMux.on('stream', (stream) => waiting.push(stream));
  return { initiator, acceptor: acceptorMux, initiatorSent, waiting };
}

const REQUEST = { kind: 'tcp', host: 'example.test', port: 443 } as const;

describe('mux early data (openEarly)', () => {
  it('sends DATA and FIN right behind the OPEN; the acceptor holds them until it accepts, then delivers them', async () => {
    const { initiator, initiatorSent, waiting } = joined();
    const { stream, opened } = initiator.openEarly(REQUEST);
    stream.write(new TextEncoder().encode('GET / HTTP/1.0\r\n\r\n'));
    stream.end();
    expect(initiatorSent.map((frame) => frame.type)).toEqual(['open', 'data', 'fin']);

    const [accepted] = waiting;
    const received = collectText(accepted!);
    accepted!.accept();
    await opened;
    accepted!.write(new TextEncoder().encode('HTTP/1.0 200 OK\r\n\r\n'));
    accepted!.end();
    expect(await received).toBe('GET / HTTP/1.0\r\n\r\n');
    expect(await collectText(stream)).toBe('HTTP/1.0 200 OK\r\n\r\n');
  });

  it('holds an early stream to its window until the acceptor answers', () => {
    const { initiator, initiatorSent } = joined({ initialWindow: 1024 });
    const { stream } = initiator.openEarly(REQUEST);
    expect(stream.write(new Uint8Array(3000))).toBe(false);
    const sentData = initiatorSent.filter((frame) => frame.type === 'data');
    expect(
      sentData.reduce((bytes, frame) => bytes + (frame.type === 'data' ? frame.data.length : 0), 0),
    ).toBe(1024);
  });

  it('closes an early stream with the acceptor’s refusal code and rejects `opened`; what it sent is dropped', async () => {
    const { initiator, acceptor, waiting } = joined();
    const { stream, opened } = initiator.openEarly(REQUEST);
    const closed = new Promise<unknown>((resolve) => stream.once('close', resolve));
    stream.write(new Uint8Array(100));
    waiting[0]!.reject('refused');
    await expect(opened).rejects.toMatchObject({ code: 'refused' });
    expect(await closed).toMatchObject({ code: 'refused' });
    expect(stream.cancelled).toBe(false);
    expect(acceptor.streamCount).toBe(0);
    expect(acceptor.closed).toBe(false);
  });

  it('tells a stream its user gave up before the answer (cancelled, RESET sent) from one that timed out', async () => {
    const given = joined();
    const first = given.initiator.openEarly(REQUEST);
    first.stream.destroy();
    await expect(first.opened).rejects.toBeDefined();
    expect(first.stream.cancelled).toBe(true);
    expect(given.initiatorSent.at(-1)).toEqual({ type: 'reset', streamId: 1, code: 'reset' });

    const slow = joined({ openTimeoutMs: 5 });
    const second = slow.initiator.openEarly(REQUEST);
    await expect(second.opened).rejects.toMatchObject({ code: 'timeout' });
    expect(second.stream.cancelled).toBe(false);
    expect(slow.initiatorSent.at(-1)).toEqual({ type: 'reset', streamId: 1, code: 'timeout' });
  });

  it('throws at once when no stream can start: closed session, invalid request, stream limit', () => {
    const { initiator } = joined();
    expect(() => initiator.openEarly({ kind: 'tcp', host: 'a b', port: 80 })).toThrow(
      expect.objectContaining({ code: 'protocol' }),
    );
    initiator.close();
    expect(() => initiator.openEarly(REQUEST)).toThrow(expect.objectContaining({ code: 'session-closed' }));
  });

  it('sends nothing of a stream from open() before OPEN_OK: it is handed over only then', async () => {
    const { initiator, initiatorSent, waiting } = joined();
    const opening = initiator.open(REQUEST);
    expect(initiatorSent.map((frame) => frame.type)).toEqual(['open']);
    waiting[0]!.accept();
    const stream = await opening;
    stream.write(new Uint8Array(3));
    expect(initiatorSent.map((frame) => frame.type)).toEqual(['open', 'data']);
  });
});

function collectText(stream: MuxStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const decoder = new TextDecoder();
    stream.on('data', (chunk) => (text += decoder.decode(chunk, { stream: true })));
    stream.on('end', () => resolve(text));
    stream.on('close', (error) => (error ? reject(error) : resolve(text)));
    stream.resume();
  });
}
