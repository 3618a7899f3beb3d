/**
 * PeerConnection without a socket: a fake PeerSocket records frames and closes, a ManualClock drives the
 * token bucket and the handshake timer, and a real Broker over a MemoryRegistry answers.
 */
import { describe, expect, it, vi } from 'vitest';
import { encodeMessage, type ServerMessage } from '@underpass/shared/signaling';
import { silentLogger } from '@underpass/shared/logger';
import { Broker } from '../src/broker.js';
import { PeerConnection, type InboundFrame, type PeerSocket } from '../src/connection.js';
import { DEFAULT_LIMITS, type SignalingLimits } from '../src/limits.js';
import type { RejectionReason } from '../src/metrics.js';
import { MemoryRegistry } from '../src/registry.js';
import { ManualClock } from '../../test/manual-clock.js';

class FakeSocket implements PeerSocket {
  open = true;
  bufferedAmount = 0;
  readonly sent: ServerMessage[] = [];
  closedWith: { code: number; reason: string } | undefined;
  terminated = false;
  pings = 0;
  send(text: string): void {
    this.sent.push(JSON.parse(text) as ServerMessage);
  }
  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
    this.open = false;
  }
  terminate(): void {
    this.terminated = true;
    this.open = false;
  }
  ping(): void {
    this.pings++;
  }
}

function frame(msg: unknown, binary = false): InboundFrame {
  const text = typeof msg === 'string' ? msg : JSON.stringify(msg);
  return { binary, byteLength: Buffer.byteLength(text), text: () => text };
}

let peers = 0;

function setup(limits: Partial<SignalingLimits> = {}) {
  const clock = new ManualClock();
  const registry = new MemoryRegistry();
  const rejected: RejectionReason[] = [];
  const joined: string[] = [];
  const connections = new Map<string, PeerConnection>();
  const broker = new Broker({
    registry,
    maxLinksPerClient: 8,
    clock,
    send: (peerId, msg) => connections.get(peerId)?.write(encodeMessage(msg)),
  });
  const context = {
    broker,
    limits: { ...DEFAULT_LIMITS, ...limits },
    metrics: {
      rejected: (why: RejectionReason) => rejected.push(why),
      peerJoined: (role: string) => joined.push(role),
      peerLeft: (role: string) => joined.splice(joined.indexOf(role), 1),
    },
    logger: silentLogger,
    clock,
    where: () => ({}),
  };
  const connect = () => {
    const socket = new FakeSocket();
    const peerId = `peer${++peers}`.padEnd(22, '0');
    const conn = new PeerConnection(peerId, '127.0.0.1', socket, context);
    connections.set(peerId, conn);
    return { conn, socket, peerId };
  };
  return { clock, registry, rejected, joined, connect };
}

const codes = (socket: FakeSocket): string[] =>
  socket.sent.map((m) => (m.type === 'error' ? `error:${m.code}` : m.type));

describe('PeerConnection', () => {
  it('handles messages pipelined behind a hello after the join, in order', async () => {
    const { connect, joined } = setup();
    const { conn, socket } = connect();
    conn.receive(frame({ type: 'hello', v: 1, role: 'client' }));
    conn.receive(frame({ type: 'path-request', requestId: 'r', mode: 'direct' }));
    await vi.waitFor(() => expect(codes(socket)).toEqual(['welcome', 'error:no-exit-available']));
    expect(joined).toEqual(['client']);
    expect(conn.idleSince).toBeDefined();
  });

  it('takes one token per message and refills them with time', async () => {
    const { connect, clock, rejected } = setup({ messagesPerSecond: 1, messageBurst: 2 });
    const { conn, socket } = connect();
    conn.receive(frame({ type: 'hello', v: 1, role: 'client' }));
    await vi.waitFor(() => expect(codes(socket)).toEqual(['welcome']));
    conn.receive(frame({ type: 'heartbeat' }));
    conn.receive(frame({ type: 'heartbeat' }));
    expect(codes(socket)).toEqual(['welcome', 'error:rate-limited']);
    clock.advance(1_000);
    conn.receive(frame({ type: 'heartbeat' }));
    expect(codes(socket)).toEqual(['welcome', 'error:rate-limited']);
    expect(rejected).toEqual(['rate-limited']);
    expect(socket.closedWith).toBeUndefined();
  });

  it('closes once the error budget is spent', async () => {
    const { connect, rejected } = setup({ maxErrors: 3 });
    const { conn, socket } = connect();
    conn.receive(frame({ type: 'hello', v: 1, role: 'client' }));
    await vi.waitFor(() => expect(codes(socket)).toEqual(['welcome']));
    conn.receive(frame('not json'));
    conn.receive(frame('{}', true));
    expect(socket.closedWith).toBeUndefined();
    conn.receive(frame('x'.repeat(DEFAULT_LIMITS.maxMessageBytes + 1)));
    expect(codes(socket).slice(1)).toEqual(['error:malformed', 'error:malformed', 'error:too-large']);
    expect(socket.closedWith).toEqual({ code: 1008, reason: 'too many errors' });
    expect(rejected).toEqual(['malformed', 'malformed', 'too-large', 'too-many-errors']);
    conn.receive(frame({ type: 'heartbeat' }));
    expect(socket.sent).toHaveLength(4);
  });

  it('closes on a bad frame before hello, with the frame’s code', () => {
    const { connect } = setup();
    const { conn, socket } = connect();
    conn.receive(frame('not json'));
    expect(codes(socket)).toEqual(['error:malformed']);
    expect(socket.closedWith).toEqual({ code: 1008, reason: 'malformed' });
  });

  it('closes with no-hello when the first message is not hello', () => {
    const { connect, rejected } = setup();
    const { conn, socket } = connect();
    conn.receive(frame({ type: 'heartbeat' }));
    expect(codes(socket)).toEqual(['error:not-allowed']);
    expect(socket.closedWith).toEqual({ code: 1008, reason: 'no hello' });
    expect(rejected).toEqual(['no-hello']);
  });

  it('times out a handshake, and not a peer that said hello in time', async () => {
    const { connect, clock, rejected } = setup({ handshakeTimeoutMs: 500 });
    const silent = connect();
    const greeted = connect();
    greeted.conn.receive(frame({ type: 'hello', v: 1, role: 'client' }));
    await vi.waitFor(() => expect(codes(greeted.socket)).toEqual(['welcome']));
    clock.advance(499);
    expect(silent.socket.sent).toEqual([]);
    clock.advance(1);
    expect(codes(silent.socket)).toEqual(['error:timeout']);
    expect(silent.socket.closedWith).toEqual({ code: 1008, reason: 'handshake timeout' });
    expect(greeted.socket.closedWith).toBeUndefined();
    expect(rejected).toEqual(['handshake-timeout']);
  });

  it('closes a connection whose queue is full', () => {
    const { connect, rejected } = setup({ maxQueuedMessages: 2 });
    const { conn, socket } = connect();
    // All in one turn: the join and the first message fill the queue before any of it runs.
    conn.receive(frame({ type: 'hello', v: 1, role: 'client' }));
    conn.receive(frame({ type: 'heartbeat' }));
    conn.receive(frame({ type: 'heartbeat' }));
    expect(socket.closedWith).toEqual({ code: 1008, reason: 'too many queued messages' });
    expect(rejected).toEqual(['queue-full']);
  });

  it('cuts a peer that does not read what it is sent', () => {
    const { connect, rejected } = setup({ maxBufferedBytes: 100 });
    const { conn, socket } = connect();
    socket.bufferedAmount = 101;
    conn.receive(frame('not json'));
    expect(socket.sent).toEqual([]);
    expect(socket.terminated).toBe(true);
    // The error frame is what found the buffer full; the malformed frame is counted after it.
    expect(rejected).toEqual(['slow-reader', 'malformed']);
  });

  it('leaves the broker when its socket closes, after a join in flight', async () => {
    const { connect, registry, joined } = setup();
    const { conn, socket, peerId } = connect();
    conn.receive(frame({ type: 'hello', v: 1, role: 'relay', capacity: 1 }));
    socket.open = false;
    await conn.socketClosed();
    expect(await registry.getPeer(peerId)).toBeUndefined();
    expect(joined).toEqual([]);
    expect(conn.idleSince).toBeUndefined();
  });
});
