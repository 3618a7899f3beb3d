import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket as NodeWebSocket, WebSocketServer } from 'ws';
import { EngineHost } from '../lib/engine-host';
import type { EngineEvent } from '../lib/messages';
import { DEFAULT_DIRECTORY_KEYS } from '../lib/settings';
import { RESUME_AFTER_MS } from '../features/volunteer/volunteer-pause-watch';
import { ManualClock } from '../../test/manual-clock';
import { FakeConditions } from './fake-conditions';

/**
 * The engines' host with real WebSockets on 127.0.0.1: a broker that accepts and never answers (so a path
 * stays "connecting"), a data port that refuses the secret, and ports where nothing listens.
 */

const servers: WebSocketServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    for (const client of server.clients) client.terminate();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function wsServer(onConnection: (socket: NodeWebSocket) => void = () => {}): Promise<number> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  servers.push(server);
  server.on('connection', onConnection);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A port nothing listens on: bound, then closed again. */
async function closedPort(): Promise<number> {
  const port = await wsServer();
  const server = servers.pop();
  await new Promise((resolve) => server?.close(resolve));
  return port;
}

function host(options: { conditions?: FakeConditions; clock?: ManualClock } = {}) {
  const conditions = options.conditions ?? new FakeConditions({ onBattery: undefined, metered: undefined });
  const engineHost = new EngineHost({
    createPeer: () => {
      throw new Error('no WebRTC in this test');
    },
    WebSocket: NodeWebSocket as unknown as typeof WebSocket, // ws implements the browser's WebSocket API
    conditions: async () => conditions,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const events: EngineEvent[] = [];
  engineHost.on('event', (event) => events.push(event));
  /** Resolves with the first event (already seen or to come) that matches. */
  const next = <T extends EngineEvent>(match: (event: EngineEvent) => event is T): Promise<T> =>
    new Promise((resolve) => {
      const seen = events.find(match);
      if (seen) return resolve(seen);
      const listener = (event: EngineEvent) => {
        if (!match(event)) return;
        engineHost.off('event', listener);
        resolve(event);
      };
      engineHost.on('event', listener);
    });
  return { engineHost, events, next };
}

type StateEvent<T extends EngineEvent['type']> = Extract<EngineEvent, { type: T }>;
const protectState =
  (status: string) =>
  (event: EngineEvent): event is StateEvent<'protect-state'> =>
    event.type === 'protect-state' && event.state.status === status;
const volunteerState =
  (status: string) =>
  (event: EngineEvent): event is StateEvent<'volunteer-state'> =>
    event.type === 'volunteer-state' && event.state.status === status;

describe('EngineHost', () => {
  it('answers every command with each engine state, all off at first', () => {
    const { engineHost } = host();
    expect(engineHost.handle({ target: 'offscreen', type: 'status' })).toEqual({
      protect: { status: 'off' },
      volunteer: { status: 'off' },
      downloads: { status: 'off' },
    });
  });

  it('reports a broker nobody answers at as a typed Protect error', async () => {
    const { engineHost, next } = host();
    const port = await closedPort();
    const status = engineHost.handle({
      target: 'offscreen',
      type: 'protect-start',
      signalingUrl: `ws://127.0.0.1:${port}`,
      directoryKeys: DEFAULT_DIRECTORY_KEYS,
      mode: 'two-hop',
    });
    expect(status.protect).toEqual({ status: 'connecting' });
    const failed = await next(protectState('error'));
    expect(failed.state).toMatchObject({ status: 'error', code: 'signaling-closed' });
    expect(engineHost.status().protect).toEqual(failed.state);
  });

  it('stops Protect on command and says off', async () => {
    const { engineHost, next } = host();
    const broker = await wsServer();
    engineHost.handle({
      target: 'offscreen',
      type: 'protect-start',
      signalingUrl: `ws://127.0.0.1:${broker}`,
      directoryKeys: DEFAULT_DIRECTORY_KEYS,
      mode: 'direct',
    });
    engineHost.handle({ target: 'offscreen', type: 'protect-stop' });
    await next(protectState('off'));
    expect(engineHost.status().protect).toEqual({ status: 'off' });
  });

  /** Starts Protect against a broker that never answers, then joins the companion on `dataPort`. */
  async function protectWithCompanion(dataPort: number) {
    const h = host();
    const broker = await wsServer();
    h.engineHost.handle({
      target: 'offscreen',
      type: 'protect-start',
      signalingUrl: `ws://127.0.0.1:${broker}`,
      directoryKeys: DEFAULT_DIRECTORY_KEYS,
      mode: 'two-hop',
    });
    h.engineHost.handle({
      target: 'offscreen',
      type: 'protect-companion',
      companion: { dataPort, secret: 's'.repeat(32) },
    });
    return h;
  }
  /** The host's word about the companion's data socket. */
  const companionLink =
    (status: 'joined' | 'lost', dataPort: number) =>
    (event: EngineEvent): event is StateEvent<'protect-companion-link'> =>
      event.type === 'protect-companion-link' &&
      event.link.status === status &&
      event.link.dataPort === dataPort;

  it('reports companion-unreachable when the data port does not answer, and keeps the path going', async () => {
    const port = await closedPort();
    const { engineHost, next } = await protectWithCompanion(port);
    expect((await next(companionLink('lost', port))).link).toMatchObject({ code: 'companion-unreachable' });
    expect(engineHost.status().protect).toEqual({ status: 'connecting' });
    engineHost.handle({ target: 'offscreen', type: 'protect-stop' });
  });

  it('reports companion-unauthorized when the companion refuses the secret', async () => {
    const refusing = await wsServer((socket) =>
      socket.once('message', () => socket.close(4401, 'bad secret')),
    );
    const { engineHost, next } = await protectWithCompanion(refusing);
    expect((await next(companionLink('lost', refusing))).link).toMatchObject({
      code: 'companion-unauthorized',
    });
    engineHost.handle({ target: 'offscreen', type: 'protect-stop' });
  });

  it('says when the companion joined and when it went away, then joins the next one on the same path', async () => {
    const sockets: NodeWebSocket[] = [];
    const first = await wsServer((socket) => sockets.push(socket));
    const { engineHost, next, events } = await protectWithCompanion(first);
    await next(companionLink('joined', first));
    sockets[0]?.terminate();
    expect((await next(companionLink('lost', first))).link).toMatchObject({ code: 'companion-closed' });
    expect(engineHost.status().protect).toEqual({ status: 'connecting' });

    const second = await wsServer();
    engineHost.handle({
      target: 'offscreen',
      type: 'protect-companion',
      companion: { dataPort: second, secret: 't'.repeat(32) },
    });
    await next(companionLink('joined', second));
    // One run all along: the engine never reported an error or off.
    const states = events.filter((e) => e.type === 'protect-state').map((e) => e.state.status);
    expect(new Set(states)).toEqual(new Set(['connecting']));
    engineHost.handle({ target: 'offscreen', type: 'protect-stop' });
  });

  it('ignores a companion for a Protect that is not running', async () => {
    const { engineHost, events } = host();
    const status = engineHost.handle({
      target: 'offscreen',
      type: 'protect-companion',
      companion: { dataPort: 1, secret: 's'.repeat(32) },
    });
    expect(status.protect).toEqual({ status: 'off' });
    expect(events).toEqual([]);
  });

  it('reports a Volunteer whose broker is gone as a typed error', async () => {
    const { engineHost, next } = host();
    const port = await closedPort();
    engineHost.handle({
      target: 'offscreen',
      type: 'volunteer-start',
      signalingUrl: `ws://127.0.0.1:${port}`,
      capacity: 2,
      bandwidthBytesPerSec: 0,
      pauseOnBattery: false,
      pauseOnMetered: false,
    });
    const failed = await next(volunteerState('error'));
    expect(failed.state).toMatchObject({ status: 'error', code: 'signaling-closed' });
  });

  it('keeps a Volunteer on through a lost broker: reconnecting, then on again when it answers', async () => {
    const { engineHost, next } = host();
    let connections = 0;
    const broker = await wsServer((socket) => {
      const n = ++connections;
      socket.once('message', () => {
        socket.send(JSON.stringify({ type: 'welcome', v: 1, peerId: `peer${n}`.padEnd(22, 'x') }));
        // The first broker goes away right after welcoming the relay, as a restarting server would.
        if (n === 1) setImmediate(() => socket.close(1001, 'shutting down'));
      });
    });
    engineHost.handle({
      target: 'offscreen',
      type: 'volunteer-start',
      signalingUrl: `ws://127.0.0.1:${broker}`,
      capacity: 2,
      bandwidthBytesPerSec: 0,
      pauseOnBattery: false,
      pauseOnMetered: false,
    });
    const reconnecting = await next(volunteerState('reconnecting'));
    expect(reconnecting.state).toMatchObject({ status: 'reconnecting', attempt: 1 });
    await next(
      (event): event is StateEvent<'volunteer-state'> =>
        event.type === 'volunteer-state' && event.state.status === 'on' && connections === 2,
    );
    expect(engineHost.status().volunteer).toEqual({ status: 'on' });
    engineHost.shutdown();
  });

  it('pauses Volunteer on battery, leaving the broker, and resumes by itself once plugged in', async () => {
    const conditions = new FakeConditions({ onBattery: false, metered: undefined });
    const clock = new ManualClock();
    const { engineHost, events, next } = host({ conditions, clock });
    const open = new Set<NodeWebSocket>();
    let connections = 0;
    const closed: Promise<void>[] = [];
    const broker = await wsServer((socket) => {
      const n = ++connections;
      open.add(socket);
      closed.push(once(socket, 'close').then(() => void open.delete(socket)));
      socket.once('message', () =>
        socket.send(JSON.stringify({ type: 'welcome', v: 1, peerId: `peer${n}`.padEnd(22, 'x') })),
      );
    });
    engineHost.handle({
      target: 'offscreen',
      type: 'volunteer-start',
      signalingUrl: `ws://127.0.0.1:${broker}`,
      capacity: 2,
      bandwidthBytesPerSec: 0,
      pauseOnBattery: true,
      pauseOnMetered: true,
    });
    await next(volunteerState('on'));
    expect(open.size).toBe(1);

    conditions.set({ onBattery: true });
    expect(engineHost.status().volunteer).toEqual({ status: 'paused', code: 'on-battery' });
    // Its place at the broker is given up: the relay's signaling socket closes.
    await closed[0];
    expect(open.size).toBe(0);

    conditions.set({ onBattery: false });
    clock.advance(RESUME_AFTER_MS - 1);
    expect(engineHost.status().volunteer.status).toBe('paused');
    const before = events.length;
    clock.advance(1);
    await next(
      (event): event is StateEvent<'volunteer-state'> =>
        event.type === 'volunteer-state' && event.state.status === 'on' && events.indexOf(event) >= before,
    );
    expect(connections).toBe(2);
    expect(open.size).toBe(1);
    engineHost.shutdown();
    expect(conditions.subscribers).toBe(0);
  });

  it('starts Volunteer paused when already on battery, without announcing it', async () => {
    const conditions = new FakeConditions({ onBattery: true, metered: undefined });
    const { engineHost, next } = host({ conditions, clock: new ManualClock() });
    let connections = 0;
    const broker = await wsServer(() => void (connections += 1));
    engineHost.handle({
      target: 'offscreen',
      type: 'volunteer-start',
      signalingUrl: `ws://127.0.0.1:${broker}`,
      capacity: 2,
      bandwidthBytesPerSec: 0,
      pauseOnBattery: true,
      pauseOnMetered: false,
    });
    const paused = await next(volunteerState('paused'));
    expect(paused.state).toEqual({ status: 'paused', code: 'on-battery' });
    expect(connections).toBe(0);
    engineHost.handle({ target: 'offscreen', type: 'volunteer-stop' });
    expect(engineHost.status().volunteer).toEqual({ status: 'off' });
    expect(conditions.subscribers).toBe(0);
  });

  it('stops both engines on shutdown', async () => {
    const { engineHost, next } = host();
    const broker = await wsServer();
    const url = `ws://127.0.0.1:${broker}`;
    engineHost.handle({
      target: 'offscreen',
      type: 'protect-start',
      signalingUrl: url,
      directoryKeys: DEFAULT_DIRECTORY_KEYS,
      mode: 'two-hop',
    });
    engineHost.handle({
      target: 'offscreen',
      type: 'volunteer-start',
      signalingUrl: url,
      capacity: 1,
      bandwidthBytesPerSec: 0,
      pauseOnBattery: false,
      pauseOnMetered: false,
    });
    engineHost.shutdown();
    await next(protectState('off'));
    await next(volunteerState('off'));
    expect(engineHost.status()).toEqual({
      protect: { status: 'off' },
      volunteer: { status: 'off' },
      downloads: { status: 'off' },
    });
  });
});
