/** SignalingClient (shared, browser-safe) against the real signaling server over real `ws` sockets. */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { exitSecretOf, newExitKey, startTestServer } from './helpers.js';
import type { SignalingServer } from '../src/server.js';
import type { UnderpassError } from '@underpass/shared/errors';
import { SignalingClient } from '@underpass/shared/signaling';
import type { LinkMessage } from '@underpass/shared/signaling';

let server: SignalingServer;
const clients: SignalingClient[] = [];

function client(hello: ConstructorParameters<typeof SignalingClient>[0]['hello'], requestTimeoutMs?: number) {
  const exitSecretKey = hello.exitKey === undefined ? undefined : exitSecretOf(hello.exitKey);
  const c = new SignalingClient({ url: server.url, WebSocket, hello, requestTimeoutMs, exitSecretKey });
  clients.push(c);
  return c;
}

function nextEvent<T>(register: (resolve: (value: T) => void) => void): Promise<T> {
  return new Promise(register);
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await server?.close();
});

describe('SignalingClient', () => {
  it('builds a two-hop path end to end: path, links, signals, link-closed', async () => {
    server = await startTestServer();
    const exitKey = newExitKey();
    const exit = client({ role: 'exit', exitKey, capacity: 10, policy: 'web' });
    const relay = client({ role: 'relay', capacity: 3 });
    const user = client({ role: 'client' });
    const exitId = await exit.connect();
    const relayId = await relay.connect();
    const userId = await user.connect();
    expect(new Set([exitId, relayId, userId]).size).toBe(3);
    expect(user.peerId).toBe(userId);
    expect(relay.reportLoad(0)).toBe(true);

    const relayLink = nextEvent<LinkMessage>((r) => relay.once('link', r));
    const path = await user.requestPath({ mode: 'two-hop' });
    expect(path.hop).toEqual({ peerId: relayId, role: 'relay' });
    expect(path.exit).toEqual({ peerId: exitId, exitKey });
    expect((await relayLink).linkId).toBe(path.linkId);

    const atRelay = nextEvent<[string, unknown]>((r) => relay.once('signal', (l, d) => r([l, d])));
    user.signal(path.linkId, { type: 'offer', sdp: 'v=0' });
    expect(await atRelay).toEqual([path.linkId, { type: 'offer', sdp: 'v=0' }]);

    const exitSide = nextEvent<LinkMessage>((r) => exit.once('link', r));
    const toExit = await relay.connectExit(exitKey);
    expect(toExit).toMatchObject({ initiator: true, peer: { peerId: exitId, role: 'exit' } });
    expect((await exitSide).peer).toEqual({ peerId: relayId, role: 'relay' });

    const closed = nextEvent<string>((r) => user.once('link-closed', r));
    relay.linkClosed(path.linkId);
    expect(await closed).toBe(path.linkId);
  });

  it('rejects requests with the server’s error code', async () => {
    server = await startTestServer();
    const user = client({ role: 'client' });
    await user.connect();
    await expect(user.requestPath({ mode: 'direct' })).rejects.toMatchObject({ code: 'no-exit-available' });
    await expect(user.requestPath({ mode: 'direct', exitKey: newExitKey() })).rejects.toMatchObject({
      code: 'unknown-exit',
    });
    await expect(user.connectExit(newExitKey())).rejects.toMatchObject({ code: 'not-allowed' });
    const error = nextEvent<UnderpassError>((r) => user.once('error', r));
    user.signal('AAAAAAAAAAAAAAAAAAAAAA', { candidate: 'x' });
    expect((await error).code).toBe('unknown-link');
  });

  it('asks for an exit that serves torrents, and gets one although another is less loaded', async () => {
    server = await startTestServer();
    const plainKey = newExitKey();
    const torrentKey = newExitKey();
    const plainId = await client({ role: 'exit', exitKey: plainKey }).connect();
    const torrentId = await client({ role: 'exit', exitKey: torrentKey, torrents: true }).connect();
    const user = client({ role: 'client' });
    await user.connect();
    for (let i = 0; i < 2; i++) {
      const path = await user.requestPath({ mode: 'direct', needs: 'torrent' });
      expect(path.exit).toEqual({ peerId: torrentId, exitKey: torrentKey, torrents: true });
      expect(path.hop).toEqual({ peerId: torrentId, role: 'exit' });
    }
    expect((await user.requestPath({ mode: 'direct' })).exit).toEqual({ peerId: plainId, exitKey: plainKey });
    await expect(
      user.requestPath({ mode: 'direct', needs: 'torrent', exitKey: plainKey }),
    ).rejects.toMatchObject({
      code: 'no-exit-available',
    });
    const response = await fetch(new URL('/v1/exits', server.url.replace(/^ws/, 'http')));
    expect(await response.json()).toEqual({
      exits: [
        { peerId: plainId, exitKey: plainKey, policy: '', load: 0 },
        { peerId: torrentId, exitKey: torrentKey, policy: '', load: 0, torrents: true },
      ],
    });
  });

  it('refuses, and closes, a path whose exit does not say it serves torrents (a server that ignores needs)', async () => {
    const { WebSocketServer } = await import('ws');
    const older = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => older.once('listening', r));
    const linkId = 'LLLLLLLLLLLLLLLLLLLLLL';
    const exit = { peerId: 'EEEEEEEEEEEEEEEEEEEEEE', exitKey: newExitKey() };
    const received: { type: string; linkId?: string }[] = [];
    const closedLink = new Promise<void>((resolve) =>
      older.on('connection', (ws) =>
        ws.on('message', (data: Buffer) => {
          const msg = JSON.parse(data.toString()) as { type: string; requestId?: string; linkId?: string };
          received.push(msg);
          if (msg.type === 'hello')
            ws.send(JSON.stringify({ type: 'welcome', v: 1, peerId: 'BBBBBBBBBBBBBBBBBBBBBB' }));
          if (msg.type === 'path-request')
            ws.send(
              JSON.stringify({
                type: 'path',
                requestId: msg.requestId,
                linkId,
                hop: { peerId: exit.peerId, role: 'exit' },
                exit,
              }),
            );
          if (msg.type === 'link-closed') resolve();
        }),
      ),
    );
    const address = older.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const c = new SignalingClient({ url: `ws://127.0.0.1:${port}`, WebSocket, hello: { role: 'client' } });
    clients.push(c);
    await c.connect();
    await expect(c.requestPath({ mode: 'direct', needs: 'torrent' })).rejects.toMatchObject({
      code: 'no-exit-available',
    });
    await closedLink;
    expect(received.map((m) => m.type)).toEqual(['hello', 'path-request', 'link-closed']);
    expect(received[1]).toMatchObject({ needs: 'torrent' });
    expect(received[2]?.linkId).toBe(linkId);
    c.close();
    await new Promise((r) => older.close(r));
  });

  it('times out a request the server never answers', async () => {
    // A bare ws server that welcomes and then stays silent.
    const { WebSocketServer } = await import('ws');
    const silent = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => silent.once('listening', r));
    silent.on('connection', (ws) =>
      ws.on('message', () =>
        ws.send(JSON.stringify({ type: 'welcome', v: 1, peerId: 'BBBBBBBBBBBBBBBBBBBBBB' })),
      ),
    );
    const address = silent.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const c = new SignalingClient({
      url: `ws://127.0.0.1:${port}`,
      WebSocket,
      hello: { role: 'client' },
      requestTimeoutMs: 100,
    });
    clients.push(c);
    expect(await c.connect()).toBe('BBBBBBBBBBBBBBBBBBBBBB');
    await expect(c.requestPath({ mode: 'direct' })).rejects.toMatchObject({ code: 'timeout' });
    c.close();
    await new Promise((r) => silent.close(r));
  });

  it('times out a connect() the server never welcomes, and ends the session', async () => {
    // A bare ws server that takes the hello and never answers.
    const { WebSocketServer } = await import('ws');
    const mute = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => mute.once('listening', r));
    const address = mute.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const c = new SignalingClient({
      url: `ws://127.0.0.1:${port}`,
      WebSocket,
      hello: { role: 'client' },
      requestTimeoutMs: 100,
    });
    clients.push(c);
    const closed = nextEvent<UnderpassError | undefined>((r) => c.once('close', r));
    await expect(c.connect()).rejects.toMatchObject({ code: 'timeout' });
    expect((await closed)?.code).toBe('timeout');
    expect(c.connected).toBe(false);
    await new Promise((r) => mute.close(r));
  });

  it('fails connect() when the server refuses the hello (an exit key it cannot prove)', async () => {
    server = await startTestServer();
    const impostor = new SignalingClient({
      url: server.url,
      WebSocket,
      hello: { role: 'exit', exitKey: newExitKey() },
      exitSecretKey: exitSecretOf(newExitKey()),
    });
    clients.push(impostor);
    await expect(impostor.connect()).rejects.toMatchObject({ code: 'not-allowed' });
  });

  it('closes with replaced when another connection proves the same exit key', async () => {
    server = await startTestServer();
    const key = newExitKey();
    const first = client({ role: 'exit', exitKey: key });
    await first.connect();
    const closed = nextEvent<UnderpassError | undefined>((r) => first.once('close', r));
    await client({ role: 'exit', exitKey: key }).connect();
    expect(await closed).toMatchObject({ code: 'replaced', message: expect.stringMatching(/took over/) });
    expect(first.connected).toBe(false);
  });

  it('reports shutting-down as the reason for close', async () => {
    server = await startTestServer();
    const user = client({ role: 'client' });
    await user.connect();
    const closed = nextEvent<UnderpassError | undefined>((r) => user.once('close', r));
    await server.close();
    expect((await closed)?.code).toBe('shutting-down');
    expect(user.connected).toBe(false);
    expect(user.signal('AAAAAAAAAAAAAAAAAAAAAA', {})).toBe(false);
    await expect(user.requestPath({ mode: 'direct' })).rejects.toMatchObject({ code: 'not-connected' });
  });

  it('refuses oversized signal data before sending it', async () => {
    server = await startTestServer();
    const user = client({ role: 'client' });
    await user.connect();
    expect(() => user.signal('AAAAAAAAAAAAAAAAAAAAAA', { sdp: 'x'.repeat(17 * 1024) })).toThrow(/exceeds/);
    expect(user.connected).toBe(true);
    await expect(user.requestPath({ mode: 'direct' })).rejects.toMatchObject({ code: 'no-exit-available' });
  });
});
