import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { systemClock, type Clock } from '../src/clock.js';
import { DataPortCloseCode } from '../src/data-port/protocol.js';
import type { SessionError } from '../src/errors.js';
import { LINK_HIGH_WATER, LINK_LOW_WATER } from '../src/links/link.js';
import {
  WebSocketLink,
  type BinaryWebSocketLike,
  type WebSocketLinkOptions,
} from '../src/links/websocket-link.js';
import { nextEvent, pattern } from './helpers.js';

/** A real `ws` server on 127.0.0.1 and a link over a real `ws` client connected to it. */
interface Connected {
  link: WebSocketLink;
  client: WebSocket;
  /** The server's end of the connection: what the peer sees. */
  peer: WebSocket;
  peerClosed: Promise<{ code: number; reason: string }>;
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * The browser's WebSocket over a real `ws` client: the same socket, but without what only `ws` has (the
 * written callback, terminate), as the offscreen document's socket is.
 */
function asBrowserSocket(client: WebSocket): BinaryWebSocketLike {
  return {
    get binaryType() {
      return client.binaryType;
    },
    set binaryType(type: string) {
      client.binaryType = type as WebSocket['binaryType'];
    },
    get bufferedAmount() {
      return client.bufferedAmount;
    },
    get readyState() {
      return client.readyState;
    },
    send: (data) => client.send(data),
    close: (code, reason) => client.close(code, reason),
    addEventListener: (type: 'message' | 'close' | 'error', listener: (event: never) => void) =>
      client.addEventListener(type, listener as never),
  };
}

async function connect(
  options: WebSocketLinkOptions = {},
  socket: 'ws' | 'browser' = 'ws',
): Promise<Connected> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => new Promise((resolve) => server.close(resolve)));
  await nextEvent(server, 'listening');
  const accepted = nextEvent<[WebSocket]>(server, 'connection');
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  cleanups.push(() => client.terminate());
  await nextEvent(client, 'open');
  const [peer] = await accepted;
  cleanups.push(() => peer.terminate());
  const peerClosed = new Promise<{ code: number; reason: string }>((resolve) =>
    peer.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const link = new WebSocketLink(socket === 'ws' ? client : asBrowserSocket(client), options);
  return { link, client, peer, peerClosed };
}

function linkClosed(link: WebSocketLink): Promise<SessionError | undefined> {
  return new Promise((resolve) => link.once('close', resolve));
}

/** Counts the timers the link starts, to show it runs none while uncongested. */
function countingClock(): Pick<Clock, 'setTimeout' | 'clearTimeout'> & { started: number } {
  const clock = {
    started: 0,
    setTimeout: (callback: () => void, ms: number) => {
      clock.started += 1;
      return systemClock.setTimeout(callback, ms);
    },
    clearTimeout: (handle: unknown) => systemClock.clearTimeout(handle),
  };
  return clock;
}

describe('WebSocketLink over a real ws connection', () => {
  it('carries binary messages both ways, each whole', async () => {
    const { link, peer } = await connect();
    const atPeer = nextEvent<[Buffer, boolean]>(peer, 'message');
    link.send(pattern(1000));
    const [data, isBinary] = await atPeer;
    expect(isBinary).toBe(true);
    expect(new Uint8Array(data)).toEqual(pattern(1000));

    const atLink = new Promise<Uint8Array>((resolve) => link.once('message', resolve));
    peer.send(pattern(2000, 3));
    const message = await atLink;
    expect(message).toBeInstanceOf(Uint8Array);
    expect(message).toEqual(pattern(2000, 3));
  });

  it('closes with malformed-frame and the error close code on a text message', async () => {
    const { link, peer, peerClosed } = await connect();
    const closed = linkClosed(link);
    peer.send('{"type":"hello"}');
    expect((await closed)?.code).toBe('malformed-frame');
    expect(await peerClosed).toEqual({ code: DataPortCloseCode.extensionError, reason: 'malformed-frame' });
    expect(link.closed).toBe(true);
  });

  it('closes on a message over its size limit, with the close code it was given', async () => {
    const { link, peer, peerClosed } = await connect({
      maxMessageBytes: 100,
      errorCloseCode: DataPortCloseCode.protocol,
    });
    const closed = linkClosed(link);
    peer.send(new Uint8Array(101));
    expect((await closed)?.code).toBe('malformed-frame');
    expect((await peerClosed).code).toBe(DataPortCloseCode.protocol);
  });

  it('closes cleanly with 1000, or with a code of the protocol above', async () => {
    const clean = await connect();
    clean.link.close();
    expect(await clean.peerClosed).toEqual({ code: 1000, reason: 'closed' });

    const replaced = await connect();
    let closedWith: unknown = 'open';
    replaced.link.on('close', (error) => (closedWith = error));
    replaced.link.closeWith(DataPortCloseCode.replaced, 'replaced by a newer connection');
    expect(replaced.link.closed).toBe(true);
    expect(closedWith).toBeUndefined();
    expect(await replaced.peerClosed).toEqual({
      code: DataPortCloseCode.replaced,
      reason: 'replaced by a newer connection',
    });
  });

  it('reports link-closed when the peer goes away, and sends nothing after', async () => {
    const { link, client, peer } = await connect();
    const closed = linkClosed(link);
    peer.terminate();
    expect((await closed)?.code).toBe('link-closed');
    link.send(pattern(10));
    expect(client.bufferedAmount).toBe(0);
  });

  /** Fills the client's buffer past the high-water mark while the peer reads nothing. */
  async function congest({ link, client, peer }: Connected): Promise<void> {
    peer.pause();
    const chunk = pattern(60 * 1024);
    while (client.bufferedAmount <= LINK_HIGH_WATER) {
      link.send(chunk);
      // Let the kernel take what it will, so that what stays buffered is what the peer did not read.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Resumes the peer and resolves with the buffered amount the link reported at its drain. */
  async function drainOf({ link, peer }: Connected): Promise<number> {
    let bufferedAtDrain: number | undefined;
    link.on('drain', () => (bufferedAtDrain ??= link.bufferedAmount));
    peer.resume();
    await waitUntil(() => bufferedAtDrain !== undefined, 'the drain');
    return bufferedAtDrain ?? Infinity;
  }

  it('over ws (the companion): drains on the written callbacks and starts no timer at all', async () => {
    const clock = countingClock();
    const connected = await connect({ clock, drainPollMs: 1 });
    await congest(connected);
    expect(await drainOf(connected)).toBeLessThanOrEqual(LINK_LOW_WATER);
    expect(clock.started).toBe(0);
  });

  it("over the browser's WebSocket: no timer while uncongested; past the high-water mark polls until the low-water mark, then drains", async () => {
    const clock = countingClock();
    const connected = await connect({ clock, drainPollMs: 1 }, 'browser');
    for (let i = 0; i < 8; i++) connected.link.send(pattern(1000, i));
    expect(clock.started).toBe(0);
    await congest(connected);
    expect(clock.started).toBeGreaterThan(0);
    expect(await drainOf(connected)).toBeLessThanOrEqual(LINK_LOW_WATER);
  });

  it('cuts a peer that stopped reading once past its cap on buffered bytes', async () => {
    const { link, client, peer, peerClosed } = await connect({ maxBufferedBytes: 2 * LINK_HIGH_WATER });
    peer.pause();
    const closed = linkClosed(link);
    const chunk = pattern(60 * 1024);
    while (!link.closed) {
      link.send(chunk);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect((await closed)?.code).toBe('limit');
    expect(client.readyState).not.toBe(WebSocket.OPEN);
    peer.resume();
    // Terminated: no close frame reaches the peer (1006 is "closed without one").
    expect((await peerClosed).code).toBe(1006);
  });
});

async function waitUntil(condition: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
