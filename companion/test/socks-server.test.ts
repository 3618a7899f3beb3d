import { connect } from 'node:net';
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import { NoTunnelError, SocksServer, type OpenStream } from '../src/socks-server.js';
import { Emitter } from '@underpass/shared/emitter';
import { StreamError, type StreamErrorCode, type UnderpassError } from '@underpass/shared/errors';
import { NodeSocketStream, type ByteStream, type ByteStreamEvents } from '@underpass/shared/streams';
import {
  ByteReader,
  connectRequest,
  connectTo,
  converse,
  greeting,
  socksConnect,
  startEchoServer,
  waitFor,
} from './helpers.js';

const reply = (code: number) => Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
const METHOD_OK = Buffer.from([5, 0]);

/** The real dialer: a TCP connection to the requested host:port, as a ByteStream. */
const dialTcp: OpenStream = (request) =>
  new Promise<ByteStream>((resolve, reject) => {
    if (request.kind !== 'tcp') return reject(new StreamError('protocol'));
    const socket = connect({ host: request.host, port: request.port, allowHalfOpen: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.pause();
      const stream = new NodeSocketStream(socket);
      resolve(stream);
      stream.resume();
    });
    socket.once('error', () => reject(new StreamError('refused')));
  });

/**
 * A tunnel stream accepted at once, as an early-data stream is (PROTOCOL.md §4, "Early data"): the test plays
 * the exit, sending bytes back (`deliver`) and ending the stream (`finish`). Like a mux stream, a `destroy`
 * from this side closes it with that error.
 */
class EarlyStream extends Emitter<ByteStreamEvents> implements ByteStream {
  closed = false;
  readonly written: Buffer[] = [];

  write(chunk: Uint8Array): boolean {
    if (this.closed) return false;
    this.written.push(Buffer.from(chunk));
    return true;
  }
  end(): void {}
  destroy(error?: UnderpassError): void {
    this.finish(error);
  }
  pause(): void {}
  resume(): void {}

  deliver(bytes: string): void {
    this.emit('data', Buffer.from(bytes));
  }
  /** The far side ends the stream: with an error, a reset of that code; without one, FIN then close. */
  finish(error?: UnderpassError): void {
    if (this.closed) return;
    if (!error) this.emit('end');
    this.closed = true;
    this.emit('close', error);
  }
}

/** A SOCKS server whose every CONNECT gets `stream` at once, and a client connected through it. */
async function acceptEarly(stream: EarlyStream) {
  const server = await start(() => Promise.resolve(stream));
  const client = await socksConnect(server.port, 'example.com', 443);
  expect(client.reply).toEqual(reply(0));
  const closed = new Promise<void>((resolve) => client.socket.once('close', () => resolve()));
  return { server, ...client, closed };
}

let echo: Awaited<ReturnType<typeof startEchoServer>>;
const servers: SocksServer[] = [];

async function start(
  openStream: OpenStream,
  extra: Partial<ConstructorParameters<typeof SocksServer>[0]> = {},
) {
  const server = new SocksServer({ openStream, ...extra });
  servers.push(server);
  await server.listen();
  return server;
}

beforeAll(async () => {
  echo = await startEchoServer();
});
afterAll(async () => {
  await echo.close();
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe('SocksServer over real TCP', () => {
  it('pipes a CONNECT to a real echo server, both ways, and half-closes cleanly', async () => {
    const server = await start(dialTcp);
    const { socket, reader, reply: connectReply } = await socksConnect(server.port, '127.0.0.1', echo.port);
    expect(connectReply).toEqual(reply(0));
    const payload = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 255;
    socket.end(payload);
    const echoed = await reader.readToEnd();
    expect(echoed.equals(payload)).toBe(true);
    await waitFor(() => server.stats().connections === 0, 'the connection to close');
    expect(server.stats()).toMatchObject({ total: 1, blocked: 0, failed: 0 });
  });

  it('forwards bytes the client sent right after the request', async () => {
    const server = await start(dialTcp);
    const socket = await connectTo(server.port);
    const reader = new ByteReader(socket);
    socket.write(Buffer.concat([greeting(), connectRequest('127.0.0.1', echo.port), Buffer.from('early')]));
    expect(await reader.read(12)).toEqual(Buffer.concat([METHOD_OK, reply(0)]));
    expect((await reader.read(5)).toString()).toBe('early');
    socket.destroy();
  });

  it.each<[StreamErrorCode, number]>([
    ['policy-denied', 0x02],
    ['dns-failed', 0x04],
    ['unreachable', 0x03],
    ['refused', 0x05],
    ['timeout', 0x06],
    ['limit', 0x01],
    ['reset', 0x01],
  ])('answers a stream failing with %s with reply 0x%s and closes', async (code, expected) => {
    const server = await start(() => Promise.reject(new StreamError(code)));
    const result = await converse(server.port, [greeting(), connectRequest('example.com', 443)]);
    expect(result.received).toEqual(Buffer.concat([METHOD_OK, reply(expected)]));
    expect(server.stats()).toMatchObject({ blocked: 0, failed: 1 });
  });

  it.each<StreamErrorCode>(['refused', 'dns-failed'])(
    'counts a stream accepted early that the exit then refuses with %s as failed, once, and ends the client',
    async (code) => {
      const stream = new EarlyStream();
      const { server, socket, closed } = await acceptEarly(stream);
      socket.write('GET / HTTP/1.1\r\n\r\n');
      await waitFor(() => stream.written.length > 0, 'the request to reach the stream');
      stream.finish(new StreamError(code));
      await closed;
      await waitFor(() => server.stats().connections === 0, 'the connection to close');
      expect(server.stats()).toMatchObject({ total: 1, blocked: 0, failed: 1 });
    },
  );

  it('does not count a stream that carried bytes back before it closed with an error', async () => {
    const stream = new EarlyStream();
    const { server, reader, closed } = await acceptEarly(stream);
    stream.deliver('HTTP/1.1 200 OK\r\n');
    expect((await reader.read(17)).toString()).toBe('HTTP/1.1 200 OK\r\n');
    // `timeout` is a refusal code too (the exit's connect timeout, and its idle timeout): the byte decides.
    stream.finish(new StreamError('timeout'));
    await closed;
    await waitFor(() => server.stats().connections === 0, 'the connection to close');
    expect(server.stats()).toMatchObject({ blocked: 0, failed: 0 });
  });

  it('does not count a stream reset before any byte: a peer that went away, not a refusal', async () => {
    const stream = new EarlyStream();
    const { server, closed } = await acceptEarly(stream);
    stream.finish(new StreamError('reset'));
    await closed;
    await waitFor(() => server.stats().connections === 0, 'the connection to close');
    expect(server.stats()).toMatchObject({ blocked: 0, failed: 0 });
  });

  it('does not count a stream that ends cleanly before any byte', async () => {
    const stream = new EarlyStream();
    const { server, socket, reader, closed } = await acceptEarly(stream);
    stream.finish();
    expect(await reader.readToEnd()).toEqual(Buffer.alloc(0));
    socket.end();
    await closed;
    await waitFor(() => server.stats().connections === 0, 'the connection to close');
    expect(server.stats()).toMatchObject({ blocked: 0, failed: 0 });
  });

  it('does not count a stream accepted early whose client left first', async () => {
    const stream = new EarlyStream();
    const { server, socket } = await acceptEarly(stream);
    socket.resetAndDestroy();
    await waitFor(() => stream.closed, 'the stream to be destroyed');
    await waitFor(() => server.stats().connections === 0, 'the connection to close');
    expect(server.stats()).toMatchObject({ blocked: 0, failed: 0 });
  });

  it('closes the client whose stream was refused before it was handed over', async () => {
    // The extension's accept and the exit's refusal can arrive in one read: the stream is closed on arrival.
    const stream = new EarlyStream();
    stream.finish(new StreamError('refused', 'connection refused'));
    const server = await start(() => Promise.resolve(stream));
    const client = await socksConnect(server.port, 'example.com', 443);
    expect(client.reply).toEqual(reply(0));
    // A clean close: the client (half-open allowed) sees the end of what it reads, maybe with the reply itself.
    if (!client.socket.readableEnded)
      await new Promise<void>((resolve) => client.socket.once('end', resolve));
    client.socket.destroy();
  });

  it('counts a CONNECT once when its open timed out and the late stream is then refused', async () => {
    const stream = new EarlyStream();
    let resolveOpen: ((stream: ByteStream) => void) | undefined;
    const server = await start(() => new Promise<ByteStream>((resolve) => (resolveOpen = resolve)), {
      openTimeoutMs: 50,
    });
    const result = await converse(server.port, [greeting(), connectRequest('example.com', 443)]);
    expect(result.received).toEqual(Buffer.concat([METHOD_OK, reply(0x06)]));
    // The open already failed (and was counted); the late stream arrives and the exit refuses it.
    resolveOpen?.(stream);
    stream.finish(new StreamError('refused'));
    await waitFor(() => server.stats().connections === 0, 'the connection to close');
    expect(server.stats()).toMatchObject({ total: 1, blocked: 0, failed: 1 });
  });

  it('answers 0x05 when the real target refuses', async () => {
    const closed = await startEchoServer();
    const port = closed.port;
    await closed.close();
    const server = await start(dialTcp);
    const result = await converse(server.port, [greeting(), connectRequest('127.0.0.1', port)]);
    expect(result.received).toEqual(Buffer.concat([METHOD_OK, reply(0x05)]));
  });

  it('counts a refusal for lack of a tunnel as blocked', async () => {
    const server = await start(() => Promise.reject(new NoTunnelError()));
    const result = await converse(server.port, [greeting(), connectRequest('example.com', 443)]);
    expect(result.received).toEqual(Buffer.concat([METHOD_OK, reply(0x03)]));
    expect(server.stats()).toMatchObject({ blocked: 1, failed: 0, total: 1 });
  });

  it('answers 0x06 when openStream never settles', async () => {
    const server = await start(() => new Promise<ByteStream>(() => {}), { openTimeoutMs: 50 });
    const result = await converse(server.port, [greeting(), connectRequest('example.com', 443)]);
    expect(result.received).toEqual(Buffer.concat([METHOD_OK, reply(0x06)]));
  });

  const bad: [string, number[][], number[]][] = [
    ['a wrong greeting version', [[4, 1, 0, 0, 80, 127, 0, 0, 1, 0]], []],
    ['no acceptable method', [[5, 1, 2]], [5, 0xff]],
    [
      'a wrong request version',
      [
        [5, 1, 0],
        [4, 1, 0, 1, 127, 0, 0, 1, 0, 80],
      ],
      [5, 0],
    ],
    [
      'BIND',
      [
        [5, 1, 0],
        [5, 2, 0, 1, 127, 0, 0, 1, 0, 80],
      ],
      [5, 0, ...reply(7)],
    ],
    [
      'UDP ASSOCIATE',
      [
        [5, 1, 0],
        [5, 3, 0, 1, 0, 0, 0, 0, 0, 0],
      ],
      [5, 0, ...reply(7)],
    ],
    [
      'an unknown address type',
      [
        [5, 1, 0],
        [5, 1, 0, 9, 1, 2, 3, 4, 0, 80],
      ],
      [5, 0, ...reply(8)],
    ],
    [
      'port 0',
      [
        [5, 1, 0],
        [5, 1, 0, 1, 127, 0, 0, 1, 0, 0],
      ],
      [5, 0, ...reply(1)],
    ],
    [
      'an oversized domain',
      [
        [5, 1, 0],
        [5, 1, 0, 3, 255, ...Buffer.from('a'.repeat(255)), 0, 80],
      ],
      [5, 0, ...reply(1)],
    ],
  ];
  it.each(bad)('answers %s with the right bytes and closes', async (_name, chunks, expected) => {
    let opened = 0;
    const server = await start(() => {
      opened += 1;
      return Promise.reject(new StreamError('refused'));
    });
    const result = await converse(
      server.port,
      chunks.map((c) => Buffer.from(c)),
    );
    expect([...result.received]).toEqual(expected);
    expect(opened).toBe(0);
  });

  it('reassembles a request split over many TCP segments', async () => {
    const server = await start(dialTcp);
    const whole = Buffer.concat([greeting(), connectRequest('127.0.0.1', echo.port)]);
    const socket = await connectTo(server.port);
    socket.setNoDelay(true);
    const reader = new ByteReader(socket);
    for (const byte of whole) {
      socket.write(Buffer.of(byte));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    expect(await reader.read(12)).toEqual(Buffer.concat([METHOD_OK, reply(0)]));
    socket.end('ping');
    expect((await reader.readToEnd()).toString()).toBe('ping');
  });

  it('closes a connection whose handshake does not finish in time', async () => {
    const server = await start(dialTcp, { handshakeTimeoutMs: 100 });
    const result = await converse(server.port, [Buffer.from([5, 1])], 5);
    expect(result.received.length).toBe(0);
    await waitFor(() => server.stats().connections === 0, 'the connection to close');
  });

  it('refuses connections over the limit and keeps serving the others', async () => {
    const server = await start(dialTcp, { maxConnections: 2 });
    const first = await connectTo(server.port);
    const second = await connectTo(server.port);
    await waitFor(() => server.stats().connections === 2, 'two connections');
    const third = await converse(server.port, [greeting()]);
    expect(third.received.length).toBe(0);
    expect(server.stats().overLimit).toBe(1);
    first.destroy();
    second.destroy();
    await waitFor(() => server.stats().connections === 0, 'the connections to close');
    const { socket, reply: ok } = await socksConnect(server.port, '127.0.0.1', echo.port);
    expect(ok).toEqual(reply(0));
    socket.destroy();
  });

  it('destroys the stream when the client left before it opened', async () => {
    let resolveOpen: ((stream: ByteStream) => void) | undefined;
    const server = await start(() => new Promise<ByteStream>((resolve) => (resolveOpen = resolve)));
    const socket = await connectTo(server.port);
    socket.write(Buffer.concat([greeting(), connectRequest('example.com', 80)]));
    await waitFor(() => server.stats().connections === 1, 'the connection');
    await waitFor(() => resolveOpen !== undefined, 'the server to ask for the stream');
    socket.destroy();
    await waitFor(() => server.stats().connections === 0, 'the connection to close');
    const stream = await dialTcp({ kind: 'tcp', host: '127.0.0.1', port: echo.port });
    let closedWith: unknown = 'open';
    stream.once('close', (error) => (closedWith = error));
    resolveOpen?.(stream);
    await waitFor(() => stream.closed, 'the stream to be destroyed');
    expect(closedWith).toBeInstanceOf(StreamError);
  });
});
