import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startCompanion, type Companion } from '../src/companion.js';
import { DataPort } from '../src/data-port.js';
import { DataPortCloseCode as CloseCode } from '@underpass/shared/data-port';
import { type StreamErrorCode } from '@underpass/shared/errors';
import { NodeSocketStream, pipeBoth } from '@underpass/shared/streams';
import { Mux } from '@underpass/shared/tunnel';
import { converse, connectRequest, greeting, socksConnect, startEchoServer, waitFor } from './helpers.js';

const ORIGIN = 'chrome-extension://abcdefghijklmnopabcdefghijklmnop';
const reply = (code: number) => Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);

let echo: Awaited<ReturnType<typeof startEchoServer>>;
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  echo = await startEchoServer();
});
afterAll(async () => {
  await echo.close();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function companion(options: Parameters<typeof startCompanion>[0] = {}): Promise<Companion> {
  const c = await startCompanion({ extensionOrigin: `${ORIGIN}/`, ...options });
  cleanups.push(() => c.close());
  return c;
}

interface Opened {
  ws: WebSocket;
  closed: Promise<{ code: number; reason: string }>;
}

function openSocket(port: number, headers: Record<string, string> = { Origin: ORIGIN }): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers });
    cleanups.push(() => ws.terminate());
    const closed = new Promise<{ code: number; reason: string }>((done) =>
      ws.once('close', (code, reason) => done({ code, reason: reason.toString() })),
    );
    ws.once('open', () => resolve({ ws, closed }));
    ws.once('unexpected-response', (_request, response) => reject(new Error(`HTTP ${response.statusCode}`)));
    ws.once('error', reject);
  });
}

/**
 * Plays the extension's offscreen document: authenticates, then answers each stream the companion opens with
 * `answer` — by default a real TCP connection to the requested target.
 */
async function fakeExtension(
  port: number,
  secret: string,
  answer?: (host: string, port: number) => StreamErrorCode | undefined,
): Promise<Opened & { mux: Mux }> {
  const opened = await openSocket(port);
  opened.ws.send(JSON.stringify({ type: 'hello', secret }));
  const mux: Mux = new Mux({
    role: 'acceptor',
    send: (frame) =>
      opened.ws.send(frame, () => {
        if (opened.ws.bufferedAmount < 256 * 1024) mux.drain();
      }),
    canSend: () => opened.ws.bufferedAmount < 1024 * 1024,
  });
  opened.ws.on('message', (data: Buffer) => mux.receive(data));
  opened.ws.on('close', () => mux.close());
  mux.on('stream', (stream, request) => {
    if (request.kind !== 'tcp') {
      stream.reject('protocol');
      return;
    }
    const refusal = answer?.(request.host, request.port);
    if (refusal) {
      stream.reject(refusal);
      return;
    }
    const socket = connect({ host: request.host, port: request.port, allowHalfOpen: true });
    socket.once('error', () => stream.reject('refused'));
    socket.once('connect', () => {
      socket.pause();
      stream.accept();
      const local = new NodeSocketStream(socket);
      void pipeBoth(local, stream);
      local.resume();
    });
  });
  return { ...opened, mux };
}

function expectRefusedWith(port: number, headers: Record<string, string>, status: number) {
  return expect(openSocket(port, headers)).rejects.toThrow(`HTTP ${status}`);
}

describe('DataPort authentication', () => {
  it('refuses a wrong Origin with 403 before the upgrade', async () => {
    const c = await companion();
    await expectRefusedWith(c.dataPort, { Origin: 'https://evil.example' }, 403);
    await expectRefusedWith(
      c.dataPort,
      { Origin: 'chrome-extension://bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb' },
      403,
    );
  });

  it('refuses a missing Origin with 403', async () => {
    const c = await companion();
    await expectRefusedWith(c.dataPort, {}, 403);
  });

  it('without a known origin, refuses web origins but lets extensions try', async () => {
    const c = await companion({ extensionOrigin: undefined });
    await expectRefusedWith(c.dataPort, { Origin: 'http://localhost:8080' }, 403);
    await expectRefusedWith(c.dataPort, { Origin: 'null' }, 403);
    const firefox = await openSocket(c.dataPort, {
      Origin: 'moz-extension://0b5c8a5e-3f55-4a8e-9a67-0c9d5f1b2e4d',
    });
    firefox.ws.send(JSON.stringify({ type: 'hello', secret: c.secret }));
    await waitFor(() => c.stats().tunnel, 'the tunnel');
  });

  it('refuses a foreign Host header (DNS rebinding) with 403', async () => {
    const c = await companion();
    await expectRefusedWith(c.dataPort, { Origin: ORIGIN, Host: `evil.example:${c.dataPort}` }, 403);
  });

  it('closes with 4401 on a wrong secret', async () => {
    const c = await companion();
    const { ws, closed } = await openSocket(c.dataPort);
    // One character off (never the same character: a random secret ends in 'A' one time in 64).
    const wrongLast = c.secret.endsWith('A') ? 'B' : 'A';
    ws.send(JSON.stringify({ type: 'hello', secret: `${c.secret.slice(0, -1)}${wrongLast}` }));
    expect((await closed).code).toBe(CloseCode.unauthorized);
    const second = await openSocket(c.dataPort);
    second.ws.send(JSON.stringify({ type: 'hello', secret: 'short' }));
    expect((await second.closed).code).toBe(4401);
    expect(c.stats().tunnel).toBe(false);
  });

  it.each([
    ['not JSON', 'hello'],
    ['the wrong type', JSON.stringify({ type: 'hi', secret: 'x' })],
    ['a secret that is not a string', JSON.stringify({ type: 'hello', secret: 42 })],
  ])('closes with 4401 on a hello that is %s', async (_name, text) => {
    const c = await companion();
    const { ws, closed } = await openSocket(c.dataPort);
    ws.send(text);
    expect((await closed).code).toBe(4401);
  });

  it('closes with 4401 when the first message is binary, even with the right secret', async () => {
    const c = await companion();
    const { ws, closed } = await openSocket(c.dataPort);
    ws.send(Buffer.from(JSON.stringify({ type: 'hello', secret: c.secret })));
    expect((await closed).code).toBe(4401);
  });

  it('closes with 4401 when no hello comes in time', async () => {
    const port = new DataPort({ secret: 'x'.repeat(43), extensionOrigin: ORIGIN, helloTimeoutMs: 100 });
    cleanups.push(() => port.close());
    await port.listen();
    const { closed } = await openSocket(port.port);
    expect((await closed).code).toBe(4401);
    expect(port.tunnelUp).toBe(false);
  });

  it('closes a connection that sends a message over 64 KiB (1009)', async () => {
    const c = await companion();
    const { ws, closed } = await openSocket(c.dataPort);
    ws.send('x'.repeat(64 * 1024 + 1));
    expect((await closed).code).toBe(1009);
  });

  it('lets a newer authenticated connection replace the older one (4409)', async () => {
    const c = await companion();
    const first = await fakeExtension(c.dataPort, c.secret);
    await waitFor(() => c.stats().tunnel, 'the first tunnel');
    const second = await fakeExtension(c.dataPort, c.secret);
    expect((await first.closed).code).toBe(CloseCode.replaced);
    expect(c.stats().tunnel).toBe(true);
    const { socket, reply: ok, reader } = await socksConnect(c.socksPort, '127.0.0.1', echo.port);
    expect(ok).toEqual(reply(0));
    socket.end('through the second');
    expect((await reader.readToEnd()).toString()).toBe('through the second');
    second.ws.close();
  });

  it('closes with 4400 on a text message after the hello', async () => {
    const c = await companion();
    const ext = await fakeExtension(c.dataPort, c.secret);
    await waitFor(() => c.stats().tunnel, 'the tunnel');
    ext.ws.send('{"type":"hello"}');
    expect((await ext.closed).code).toBe(CloseCode.protocol);
    await waitFor(() => !c.stats().tunnel, 'the tunnel to go down');
  });

  it('closes with 4400 on a malformed mux frame', async () => {
    const c = await companion();
    const ext = await fakeExtension(c.dataPort, c.secret);
    await waitFor(() => c.stats().tunnel, 'the tunnel');
    ext.ws.send(Buffer.from([99, 0, 0, 0, 1]));
    const closed = await ext.closed;
    expect(closed.code).toBe(4400);
    expect(closed.reason).toBe('malformed-frame');
  });
});

describe('SOCKS through the tunnel', () => {
  it('refuses CONNECTs while no tunnel is up and counts them as blocked (kill switch)', async () => {
    const c = await companion();
    const result = await converse(c.socksPort, [greeting(), connectRequest('example.com', 443)]);
    expect(result.received).toEqual(Buffer.concat([Buffer.from([5, 0]), reply(0x03)]));
    expect(c.stats()).toMatchObject({ tunnel: false, blocked: 1 });
  });

  it('carries a stream to a real TCP server through the mux and back, then blocks again', async () => {
    const c = await companion();
    const ext = await fakeExtension(c.dataPort, c.secret);
    await waitFor(() => c.stats().tunnel, 'the tunnel');

    const { socket, reader, reply: ok } = await socksConnect(c.socksPort, '127.0.0.1', echo.port);
    expect(ok).toEqual(reply(0));
    const payload = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 255;
    socket.end(payload);
    const echoed = await reader.readToEnd();
    expect(echoed.length).toBe(payload.length);
    expect(echoed.equals(payload)).toBe(true);

    ext.ws.close();
    await waitFor(() => !c.stats().tunnel, 'the tunnel to go down');
    const blocked = await converse(c.socksPort, [greeting(), connectRequest('127.0.0.1', echo.port)]);
    expect(blocked.received).toEqual(Buffer.concat([Buffer.from([5, 0]), reply(0x03)]));
    expect(c.stats().blocked).toBe(1);
  });

  it('serves several streams at once', async () => {
    const c = await companion();
    await fakeExtension(c.dataPort, c.secret);
    await waitFor(() => c.stats().tunnel, 'the tunnel');
    const results = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const { socket, reader } = await socksConnect(c.socksPort, '127.0.0.1', echo.port);
        socket.end(Buffer.alloc(100_000 + i, i));
        return reader.readToEnd();
      }),
    );
    results.forEach((r, i) => expect(r.equals(Buffer.alloc(100_000 + i, i))).toBe(true));
  });

  it.each<[StreamErrorCode, number]>([
    ['policy-denied', 0x02],
    ['dns-failed', 0x04],
    ['refused', 0x05],
    ['timeout', 0x06],
    ['limit', 0x01],
  ])('passes the exit refusing with %s on as SOCKS reply 0x%s', async (code, expected) => {
    const c = await companion();
    await fakeExtension(c.dataPort, c.secret, () => code);
    await waitFor(() => c.stats().tunnel, 'the tunnel');
    const result = await converse(c.socksPort, [greeting(), connectRequest('blocked.example', 25)]);
    expect(result.received).toEqual(Buffer.concat([Buffer.from([5, 0]), reply(expected)]));
    expect(c.stats()).toMatchObject({ blocked: 0, failed: 1 });
  });

  it('resets the SOCKS clients when the tunnel drops mid-stream', async () => {
    const c = await companion();
    const ext = await fakeExtension(c.dataPort, c.secret);
    await waitFor(() => c.stats().tunnel, 'the tunnel');
    const { socket, reader, reply: ok } = await socksConnect(c.socksPort, '127.0.0.1', echo.port);
    expect(ok).toEqual(reply(0));
    socket.write('hello');
    expect((await reader.read(5)).toString()).toBe('hello');
    ext.ws.terminate();
    await reader.readToEnd();
    await waitFor(() => c.stats().connections === 0, 'the SOCKS connection to close');
  });

  it('holds DATA while the WebSocket buffer is over 1 MiB and goes on when it drains', async () => {
    let congested = 0;
    let drained = 0;
    const port = new DataPort({
      secret: 's'.repeat(43),
      extensionOrigin: ORIGIN,
      createMux: (options) => {
        const mux = new Mux({
          ...options,
          canSend: () => {
            const ok = options.canSend?.() ?? true;
            if (!ok) congested += 1;
            return ok;
          },
        });
        const drain = mux.drain.bind(mux);
        mux.drain = () => {
          drained += 1;
          drain();
        };
        return mux;
      },
    });
    cleanups.push(() => port.close());
    await port.listen();
    const ext = await fakeExtension(port.port, 's'.repeat(43));
    await waitFor(() => port.tunnelUp, 'the tunnel');
    const streams = await Promise.all(
      Array.from({ length: 32 }, () => port.open({ kind: 'tcp', host: '127.0.0.1', port: echo.port })),
    );
    ext.ws.pause(); // the extension stops reading: our send buffer must fill, and stop
    const received = streams.map(() => 0);
    const size = 512 * 1024;
    streams.forEach((stream, i) => {
      stream.on('data', (chunk) => (received[i] = (received[i] ?? 0) + chunk.length));
      stream.resume();
      stream.write(new Uint8Array(size).fill(i));
      stream.end();
    });
    await waitFor(() => congested > 0, 'the mux to see congestion');
    ext.ws.resume();
    await waitFor(() => received.every((n) => n === size), 'every stream to echo back');
    expect(drained).toBeGreaterThan(0);
  });
});
