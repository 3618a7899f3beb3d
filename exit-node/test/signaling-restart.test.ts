/**
 * Issue 11, first bullet, with real parts: a real signaling server (in memory, then two instances on a real
 * redis-server) is shut down and started again on the same port while a client's stream runs end to end over
 * real WebRTC through a volunteer relay and an exit to a real TCP echo server. The stream must not notice; the
 * exit, the relay and the client reconnect by themselves, and the broker lists each once.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ProtectEngine, VolunteerEngine, type ProtectState } from '@underpass/shared/engines';
import {
  ReconnectingSignaling,
  type SignalingConnectionState,
  type WebSocketConstructorLike,
} from '@underpass/shared/signaling';
import type { ByteStream } from '@underpass/shared/streams';
import { startRedisServer, type RedisServer } from '../../bench/lib/redis-server.js';
import { deterministicBytes } from '../../test/http-site.js';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/src/server.js';
import { spawnInstance } from '../../signaling-server/test/helpers.js';
import { startExitNode, type ExitNode } from '../src/exit-node.js';
import { nodePeerFactory } from '../src/node-peer.js';
import { until } from './until.js';
import { DEVELOPMENT_DIRECTORY_KEYS } from '@underpass/shared/trust';
import { developmentCertificates } from '../src/certificates.js';

const WS = WebSocket as unknown as WebSocketConstructorLike;
const CHUNK = 16 * 1024;

/** A TCP echo server on 127.0.0.1: what the exit dials for the client. */
async function startEcho(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Round trips over one tunnel stream without pause: each chunk (distinct bytes) goes to the echo server and
 * must come back unchanged before the next one goes. Counts rounds and records any error or corruption.
 */
class EchoProbe {
  rounds = 0;
  failure: string | undefined;
  private expected: Buffer = Buffer.alloc(0);
  private received: Buffer[] = [];
  private receivedBytes = 0;
  private stopped = false;

  constructor(private readonly stream: ByteStream) {
    stream.on('data', (chunk) => this.onData(Buffer.from(chunk)));
    stream.on('close', (error) => {
      if (!this.stopped) this.failure ??= `the stream closed: ${error?.code ?? 'cleanly'}`;
    });
    stream.on('end', () => {
      if (!this.stopped) this.failure ??= 'the stream ended';
    });
    stream.resume();
    this.sendNext();
  }

  stop(): void {
    this.stopped = true;
    this.stream.destroy();
  }

  private sendNext(): void {
    if (this.stopped || this.failure) return;
    this.expected = deterministicBytes(CHUNK, 0x9e3779b9 ^ (this.rounds + 1));
    this.received = [];
    this.receivedBytes = 0;
    this.stream.write(this.expected);
  }

  private onData(chunk: Buffer): void {
    this.received.push(chunk);
    this.receivedBytes += chunk.length;
    if (this.receivedBytes < CHUNK) return;
    const echoed = Buffer.concat(this.received);
    if (!echoed.equals(this.expected)) {
      this.failure ??= `round ${this.rounds + 1} came back corrupted`;
      return;
    }
    this.rounds += 1;
    this.sendNext();
  }
}

async function listedExits(server: { port: number }): Promise<{ exitKey: string; peerId: string }[]> {
  const response = await fetch(`http://127.0.0.1:${server.port}/v1/exits`);
  return ((await response.json()) as { exits: { exitKey: string; peerId: string }[] }).exits;
}

/** The relay, the client and the exit of one network, and what each saw. */
type Network = {
  exit: ExitNode;
  /** The exit's log lines, as `event` (and `code` where there is one). */
  exitLog: string[];
  relaySignaling: ReconnectingSignaling;
  volunteer: VolunteerEngine;
  protect: ProtectEngine;
  clientSignaling: () => ReconnectingSignaling;
  protectStates: ProtectState[];
  relayStates: SignalingConnectionState[];
};

describe('every role outlives a signaling server restart', () => {
  let dataDir: string;
  let echo: Awaited<ReturnType<typeof startEcho>>;
  let redis: RedisServer;
  const cleanup: (() => unknown)[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'underpass-restart-'));
    echo = await startEcho();
    redis = await startRedisServer();
  });
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });
  afterAll(async () => {
    await echo?.close();
    await redis?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** Exit on `exitUrl`, relay on `relayUrl`, a protected client (two hops) on `clientUrl`. */
  async function startNetwork(exitUrl: string, relayUrl: string, clientUrl: string): Promise<Network> {
    const exitLog: string[] = [];
    const record = (fields: Record<string, unknown>) =>
      exitLog.push([fields['event'], fields['code']].filter((v) => v !== undefined).join(' '));
    const exit = await startExitNode({
      certificate: developmentCertificates,
      logger: { debug: () => {}, info: record, warn: record, error: record },
      signalingUrl: exitUrl,
      keyFile: join(dataDir, `exit-${cleanup.length}.json`),
      allowDestinations: ['127.0.0.1/32'],
      allowPorts: [String(echo.port)],
    });
    cleanup.push(() => exit.close());
    const relaySignaling = new ReconnectingSignaling({
      url: relayUrl,
      WebSocket: WS,
      hello: { role: 'relay', capacity: 4 },
    });
    const relayStates: SignalingConnectionState[] = [];
    relaySignaling.on('state', (state) => relayStates.push(state));
    const volunteer = new VolunteerEngine({
      signaling: relaySignaling,
      createPeer: nodePeerFactory(),
      capacity: 4,
    });
    await volunteer.start();
    cleanup.push(() => volunteer.stop());
    let made: ReconnectingSignaling | undefined;
    const protect = new ProtectEngine({
      directoryKeys: DEVELOPMENT_DIRECTORY_KEYS,
      createSignaling: () =>
        (made = new ReconnectingSignaling({ url: clientUrl, WebSocket: WS, hello: { role: 'client' } })),
      createPeer: nodePeerFactory(),
      mode: 'two-hop',
    });
    const protectStates: ProtectState[] = [];
    protect.on('state', (state) => protectStates.push(state));
    await protect.start();
    cleanup.push(() => protect.stop());
    const clientSignaling = () => {
      if (!made) throw new Error('no client signaling');
      return made;
    };
    return { exit, exitLog, relaySignaling, volunteer, protect, clientSignaling, protectStates, relayStates };
  }

  /** A second client, started after the restart: it needs the re-announced relay and exit. */
  async function newClientThrough(url: string): Promise<ProtectState> {
    const protect = new ProtectEngine({
      directoryKeys: DEVELOPMENT_DIRECTORY_KEYS,
      createSignaling: () => new ReconnectingSignaling({ url, WebSocket: WS, hello: { role: 'client' } }),
      createPeer: nodePeerFactory(),
      mode: 'two-hop',
    });
    cleanup.push(() => protect.stop());
    await protect.start();
    return protect.state;
  }

  /** Runs the probe across `restart`; returns ms from the server being back to the exit being listed. */
  async function acrossRestart(
    network: Network,
    probe: EchoProbe,
    stop: () => Promise<void>,
    start: () => Promise<{ port: number }>,
  ): Promise<number> {
    await until('round trips before the outage', () => probe.rounds >= 20);
    await stop();
    await until(
      'every role noticing the outage',
      () =>
        network.exit.signalingState().status !== 'connected' &&
        !network.relaySignaling.connected &&
        !network.clientSignaling().connected,
    );
    // The path carries on without any server: more round trips while it is down.
    const duringOutage = probe.rounds;
    await until('round trips during the outage', () => probe.rounds >= duringOutage + 20);
    // A real outage, not a blink: the exit's backoff has grown through four failed attempts (its next wait is
    // up to 4 s), so the time to be listed again below includes what the backoff costs.
    await until('the exit failing four attempts', () => {
      const state = network.exit.signalingState();
      return state.status === 'reconnecting' && state.attempt >= 5;
    });
    const server = await start();
    const back = performance.now();
    await until('the exit listed again', async () => (await listedExits(server)).length > 0);
    const listedAfterMs = performance.now() - back;
    await until(
      'the relay and the client reconnected',
      () => network.relaySignaling.connected && network.clientSignaling().connected,
    );
    const afterRestart = probe.rounds;
    await until('round trips after the restart', () => probe.rounds >= afterRestart + 20);
    return listedAfterMs;
  }

  it('in memory: the stream runs through the outage, the exit is listed once again', async () => {
    let server: SignalingServer = await startSignalingServer({ port: 0 });
    const port = server.port;
    cleanup.push(() => server.close());
    const network = await startNetwork(server.url, server.url, server.url);
    const stream = await network.protect.open({ kind: 'tcp', host: '127.0.0.1', port: echo.port });
    const probe = new EchoProbe(stream);
    cleanup.push(() => probe.stop());

    const listedAfterMs = await acrossRestart(
      network,
      probe,
      () => server.close(),
      async () => (server = await startSignalingServer({ port })),
    );
    console.log(
      `[signaling-restart memory] exit listed ${Math.round(listedAfterMs)} ms after the server was back; ` +
        `${probe.rounds} round trips of ${CHUNK} B, stream error: ${probe.failure ?? 'none'}`,
    );
    expect(probe.failure).toBeUndefined();
    // The path never went down: Protect stayed protected from its first path on.
    expect(network.protectStates.map((s) => s.status)).toEqual(['connecting', 'protected']);
    expect(network.relayStates.map((s) => s.status)).toContain('reconnecting');
    expect(network.volunteer.stats().clientsNow).toBe(1);
    // Listed once (no ghost of the old socket), under the same key.
    expect((await listedExits(server)).map((e) => e.exitKey)).toEqual([network.exit.exitKey]);
    // The re-announced relay serves a new client (its load says 1 of 4 is taken).
    expect(await newClientThrough(server.url)).toMatchObject({
      status: 'protected',
      path: { hop: { role: 'relay' }, exit: { exitKey: network.exit.exitKey } },
    });
  });

  it('with Redis: an instance killed outright comes back; its ghosts are reaped and the exit listed once', async () => {
    const prefix = `killed${Date.now()}:`;
    // An expiry longer than the killed instance takes to start again, so its ghosts are still there then.
    const expiryMs = 6_000;
    const b = await startSignalingServer({ port: 0, redis: { url: redis.url, prefix, expiryMs } });
    cleanup.push(() => b.close());
    let a = await spawnInstance(redis.url, prefix, { expiryMs });
    cleanup.push(() => a.child.kill('SIGKILL'));
    const network = await startNetwork(a.url, b.url, a.url);
    const stream = await network.protect.open({ kind: 'tcp', host: '127.0.0.1', port: echo.port });
    const probe = new EchoProbe(stream);
    cleanup.push(() => probe.stop());
    await until('round trips before the outage', () => probe.rounds >= 20);

    const ghost = network.exit.peerId;
    a.child.kill('SIGKILL');
    await until('the exit noticing', () => network.exit.signalingState().status !== 'connected');
    a = await spawnInstance(redis.url, prefix, { port: a.port, expiryMs });
    const back = performance.now();
    // The killed instance's registration of the exit is a ghost until B reaps it (expiry 1 s): the exit's
    // new hello is refused as a duplicate key meanwhile, and it retries until it is let in.
    await until('the exit listed again (once, under its new id)', async () => {
      const exits = await listedExits(b);
      return exits.length === 1 && exits[0]?.peerId !== ghost && network.exit.peerId === exits[0]?.peerId;
    });
    const listedAfterMs = performance.now() - back;
    await until('the client reconnected', () => network.clientSignaling().connected);
    const afterRestart = probe.rounds;
    await until('round trips after the restart', () => probe.rounds >= afterRestart + 20);
    console.log(
      `[signaling-restart redis-kill] exit listed ${Math.round(listedAfterMs)} ms after the killed instance ` +
        `was back (exit log: ${network.exitLog.filter((l) => l.startsWith('signaling')).join(', ')}); ` +
        `${probe.rounds} round trips, stream error: ${probe.failure ?? 'none'}`,
    );
    expect(probe.failure).toBeUndefined();
    expect(network.protectStates.map((s) => s.status)).toEqual(['connecting', 'protected']);
    expect(network.volunteer.stats().clientsNow).toBe(1);
    expect((await listedExits(b)).map((e) => e.exitKey)).toEqual([network.exit.exitKey]);
    expect((await listedExits(a)).map((e) => e.exitKey)).toEqual([network.exit.exitKey]);
  });

  it('with Redis and two instances: one restarts, the stream runs on, the other lists the exit once', async () => {
    const prefix = `restart${Date.now()}:`;
    const redisOptions = { url: redis.url, prefix, expiryMs: 1_000 };
    let a: SignalingServer = await startSignalingServer({ port: 0, redis: redisOptions });
    const portA = a.port;
    const b = await startSignalingServer({ port: 0, redis: redisOptions });
    cleanup.push(() => b.close());
    cleanup.push(() => a.close());
    // The exit and the client on A (the one that restarts), the relay on B.
    const network = await startNetwork(a.url, b.url, a.url);
    const stream = await network.protect.open({ kind: 'tcp', host: '127.0.0.1', port: echo.port });
    const probe = new EchoProbe(stream);
    cleanup.push(() => probe.stop());

    let relayDisturbed = false;
    network.relaySignaling.on('state', () => (relayDisturbed = true));
    await until('round trips before the outage', () => probe.rounds >= 20);
    await a.close();
    await until(
      'the exit and the client noticing',
      () => network.exit.signalingState().status !== 'connected' && !network.clientSignaling().connected,
    );
    expect(await listedExits(b)).toEqual([]);
    const duringOutage = probe.rounds;
    await until('round trips during the outage', () => probe.rounds >= duringOutage + 20);
    a = await startSignalingServer({ port: portA, redis: redisOptions });
    const back = performance.now();
    await until('the exit listed again, on B', async () => (await listedExits(b)).length > 0);
    const listedAfterMs = performance.now() - back;
    await until('the client reconnected', () => network.clientSignaling().connected);
    const afterRestart = probe.rounds;
    await until('round trips after the restart', () => probe.rounds >= afterRestart + 20);
    console.log(
      `[signaling-restart redis] exit listed on the other instance ${Math.round(listedAfterMs)} ms after ` +
        `the restarted one was back; ${probe.rounds} round trips, stream error: ${probe.failure ?? 'none'}`,
    );
    expect(probe.failure).toBeUndefined();
    expect(network.protectStates.map((s) => s.status)).toEqual(['connecting', 'protected']);
    // The relay on B never lost its server, and was not told its links closed.
    expect(relayDisturbed).toBe(false);
    expect(network.volunteer.stats().clientsNow).toBe(1);
    expect((await listedExits(a)).map((e) => e.exitKey)).toEqual([network.exit.exitKey]);
    expect((await listedExits(b)).map((e) => e.exitKey)).toEqual([network.exit.exitKey]);
    expect(await newClientThrough(b.url)).toMatchObject({
      status: 'protected',
      path: { hop: { role: 'relay' }, exit: { exitKey: network.exit.exitKey } },
    });
  });
});
