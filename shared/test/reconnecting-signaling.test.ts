import { describe, expect, it } from 'vitest';
import {
  DEFAULT_RECONNECT_BACKOFF,
  ReconnectingSignaling,
  fullJitterDelay,
  type SignalingConnectionState,
  type WebSocketLike,
} from '@underpass/shared/signaling';
import { ManualClock } from '../../test/manual-clock.js';

/**
 * The reconnect loop's logic (pure timing and state) against scripted sockets: a real SignalingClient runs on
 * each, and the test plays the server. The real broker restarts are in exit-node/test/signaling-restart.test.ts.
 */

type Listener = (event: never) => void;

/** A socket the test drives: it records what the client sent and plays the server's side. */
class ScriptedSocket implements WebSocketLike {
  static made: ScriptedSocket[] = [];
  readyState = 0;
  readonly sent: Record<string, unknown>[] = [];
  private readonly listeners = new Map<string, Listener[]>();

  constructor(readonly url: string) {
    ScriptedSocket.made.push(this);
  }

  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(): void {
    this.drop(1000, 'bye');
  }
  addEventListener(type: string, listener: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  accept(): void {
    this.readyState = 1;
    this.fire('open', undefined);
  }
  say(msg: Record<string, unknown>): void {
    this.fire('message', { data: JSON.stringify(msg) });
  }
  welcome(peerId: string): void {
    this.say({ type: 'welcome', v: 1, peerId, heartbeatMs: 60_000 });
  }
  drop(code = 1006, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.fire('close', { code, reason });
  }
  private fire(type: string, event: unknown): void {
    for (const listener of this.listeners.get(type) ?? []) (listener as (e: unknown) => void)(event);
  }
}

const PEER_A = 'AAAAAAAAAAAAAAAAAAAAAA';
const PEER_B = 'BBBBBBBBBBBBBBBBBBBBBB';
const LINK = 'LLLLLLLLLLLLLLLLLLLLLL';

function setup(options: { retryFirstConnect?: boolean; random?: () => number } = {}) {
  ScriptedSocket.made = [];
  const clock = new ManualClock();
  const states: SignalingConnectionState[] = [];
  const signaling = new ReconnectingSignaling({
    url: 'ws://broker.invalid/',
    WebSocket: ScriptedSocket,
    hello: { role: 'relay', capacity: 3 },
    clock,
    random: options.random ?? (() => 0.5),
    ...(options.retryFirstConnect ? { retryFirstConnect: true } : {}),
  });
  signaling.on('state', (state) => states.push(state));
  const socket = (i: number): ScriptedSocket => {
    const made = ScriptedSocket.made[i];
    if (!made) throw new Error(`socket ${i} was not opened`);
    return made;
  };
  return { clock, states, signaling, socket };
}

/** Lets the client's promise callbacks run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('fullJitterDelay', () => {
  const backoff = { baseMs: 100, maxMs: 1_000 };

  it('waits uniformly below base·2ⁿ, never above the cap', () => {
    expect(fullJitterDelay(0, backoff, () => 0.999)).toBe(99);
    expect(fullJitterDelay(3, backoff, () => 0.5)).toBe(400);
    expect(fullJitterDelay(4, backoff, () => 0.5)).toBe(500);
    expect(fullJitterDelay(50, backoff, () => 0.999)).toBe(999);
    expect(fullJitterDelay(2, backoff, () => 0)).toBe(0);
  });

  it('never waits longer than the server has been away so far (at least the base)', () => {
    // Six refusals within 2.7 s: the exponent alone would allow 6.4 s.
    expect(fullJitterDelay(6, backoff, () => 0.999, 700)).toBe(699);
    expect(fullJitterDelay(6, { baseMs: 100, maxMs: 8_000 }, () => 0.999, 2_700)).toBe(2_697);
    expect(fullJitterDelay(3, backoff, () => 0.999, 10)).toBe(99);
    expect(fullJitterDelay(3, backoff, () => 0.999, 60_000)).toBe(799);
    expect(fullJitterDelay(3, backoff, () => 0.999, Number.NaN)).toBe(799);
  });

  it('stays in bounds whatever the random source returns', () => {
    for (const r of [-1, 1, 7, Number.NaN, Infinity]) {
      const delay = fullJitterDelay(10, backoff, () => r);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(1_000);
    }
  });

  it('defaults: a first retry within 250 ms, none later than 8 s after the server is back', () => {
    expect(DEFAULT_RECONNECT_BACKOFF).toEqual({ baseMs: 250, maxMs: 8_000 });
  });
});

describe('ReconnectingSignaling', () => {
  it('says hello on every new socket, repeats the last load, and shows each step', async () => {
    const { clock, states, signaling, socket } = setup();
    const first = signaling.connect();
    socket(0).accept();
    expect(socket(0).sent[0]).toMatchObject({ type: 'hello', role: 'relay', capacity: 3 });
    socket(0).welcome(PEER_A);
    await expect(first).resolves.toBe(PEER_A);
    expect(signaling.reportLoad(2)).toBe(true);

    socket(0).say({ type: 'error', code: 'shutting-down', message: 'the server is shutting down' });
    socket(0).drop(1001, 'shutting down');
    await settle();
    // random() = 0.5 and no failure yet: half of the 250 ms base.
    expect(signaling.state).toEqual({
      status: 'reconnecting',
      attempt: 1,
      nextInMs: 125,
      code: 'shutting-down',
      reason: 'the server is shutting down',
    });
    expect(signaling.connected).toBe(false);
    expect(signaling.reportLoad(3)).toBe(false);

    clock.advance(124);
    expect(ScriptedSocket.made).toHaveLength(1);
    clock.advance(1);
    expect(ScriptedSocket.made).toHaveLength(2);
    socket(1).accept();
    expect(socket(1).sent[0]).toMatchObject({ type: 'hello', role: 'relay', capacity: 3 });
    socket(1).welcome(PEER_B);
    await settle();
    expect(signaling.peerId).toBe(PEER_B);
    // The announce: the load last reported, though it was reported while no socket was up.
    expect(socket(1).sent[1]).toEqual({ type: 'load', load: 3 });
    expect(states.map((s) => s.status)).toEqual([
      'connecting',
      'connected',
      'reconnecting',
      'connecting',
      'connected',
    ]);
  });

  it('backs off while the server stays away: no wait beyond the outage so far, up to the cap', async () => {
    const { clock, signaling, socket } = setup({ random: () => 0.999 });
    const first = signaling.connect();
    socket(0).accept();
    socket(0).welcome(PEER_A);
    await first;
    socket(0).drop();
    await settle();
    const waits: number[] = [];
    for (let i = 1; i <= 8; i++) {
      const state = signaling.state;
      if (state.status !== 'reconnecting') throw new Error(`expected reconnecting, got ${state.status}`);
      expect(state.attempt).toBe(i);
      waits.push(state.nextInMs);
      clock.advance(state.nextInMs);
      socket(i).drop(1006, 'refused');
      await settle();
    }
    // Each wait at most the time since the loss: a server back after the n-th refusal is reached again within
    // as long as it was away.
    expect(waits).toEqual([249, 249, 497, 994, 1987, 3972, 7940, 7992]);
  });

  it('starts the backoff afresh after a connection that stayed up, not after one dropped at once', async () => {
    const { clock, signaling, socket } = setup({ random: () => 0.999 });
    const first = signaling.connect();
    socket(0).accept();
    socket(0).welcome(PEER_A);
    await first;
    socket(0).drop();
    await settle();
    clock.advance(249);
    socket(1).drop();
    await settle();
    clock.advance(499);
    // Welcomed, then dropped after a second: a flapping server keeps the wait growing.
    socket(2).accept();
    socket(2).welcome(PEER_B);
    await settle();
    clock.advance(1_000);
    socket(2).drop();
    await settle();
    expect(signaling.state).toMatchObject({ status: 'reconnecting', nextInMs: 999 });
    clock.advance(999);
    socket(3).accept();
    socket(3).welcome(PEER_A);
    await settle();
    clock.advance(10_000);
    socket(3).drop();
    await settle();
    expect(signaling.state).toMatchObject({ status: 'reconnecting', nextInMs: 249 });
  });

  it('reports a first connection that fails, unless told to keep trying', async () => {
    const once = setup();
    const first = once.signaling.connect();
    once.socket(0).drop(1006, '');
    await expect(first).rejects.toMatchObject({ code: 'signaling-closed' });
    expect(once.signaling.state).toMatchObject({ status: 'stopped', code: 'signaling-closed' });
    expect(once.clock.pending).toBe(0);

    const patient = setup({ retryFirstConnect: true });
    const waiting = patient.signaling.connect();
    patient.socket(0).drop(1006, '');
    await settle();
    expect(patient.signaling.state).toMatchObject({ status: 'reconnecting', attempt: 2 });
    patient.clock.advance(125);
    patient.socket(1).accept();
    patient.socket(1).welcome(PEER_A);
    await expect(waiting).resolves.toBe(PEER_A);
  });

  it('counts a socket welcomed and closed in the same turn as connected, then reconnects', async () => {
    const { signaling, socket } = setup();
    const first = signaling.connect();
    socket(0).accept();
    socket(0).welcome(PEER_A);
    socket(0).drop(1001, 'shutting down');
    await expect(first).resolves.toBe(PEER_A);
    expect(signaling.state).toMatchObject({ status: 'reconnecting', attempt: 1 });
  });

  it('stops for good on a version refusal, and on close()', async () => {
    const { clock, signaling, socket } = setup({ retryFirstConnect: true });
    const first = signaling.connect();
    socket(0).accept();
    socket(0).say({ type: 'error', code: 'unsupported-version', message: 'v1 only' });
    await expect(first).rejects.toMatchObject({ code: 'unsupported-version' });
    expect(signaling.state).toMatchObject({ status: 'stopped', code: 'unsupported-version' });
    expect(clock.pending).toBe(0);

    const again = signaling.connect();
    socket(1).accept();
    socket(1).welcome(PEER_A);
    await again;
    socket(1).drop();
    await settle();
    expect(clock.pending).toBe(1);
    signaling.close();
    expect(clock.pending).toBe(0);
    expect(signaling.state).toEqual({ status: 'stopped' });
    await expect(signaling.connect()).rejects.toMatchObject({ code: 'closed' });
    clock.advance(60_000);
    expect(ScriptedSocket.made).toHaveLength(2);
  });

  it('stops for good when replaced after its welcome: another process took its key over', async () => {
    const { clock, signaling, socket, states } = setup();
    const connected = signaling.connect();
    socket(0).accept();
    socket(0).welcome(PEER_A);
    await connected;
    socket(0).say({ type: 'error', code: 'replaced', message: 'another exit process took over' });
    socket(0).drop(1008, 'replaced');
    await settle();
    expect(signaling.state).toEqual({
      status: 'stopped',
      code: 'replaced',
      reason: 'another exit process took over',
    });
    expect(states.some((s) => s.status === 'reconnecting')).toBe(false);
    expect(clock.pending).toBe(0);
    clock.advance(60_000);
    expect(ScriptedSocket.made).toHaveLength(1);
  });

  it('signals and closes only links it holds; requests fail fast while away', async () => {
    const { signaling, socket } = setup();
    const links: string[] = [];
    signaling.on('link', (msg) => links.push(msg.linkId));
    const first = signaling.connect();
    socket(0).accept();
    socket(0).welcome(PEER_A);
    await first;
    socket(0).say({
      type: 'link',
      linkId: LINK,
      initiator: false,
      peer: { peerId: PEER_B, role: 'client' },
    });
    expect(links).toEqual([LINK]);
    expect(signaling.signal(LINK, { type: 'answer', sdp: 'x' })).toBe(true);
    expect(signaling.signal('ZZZZZZZZZZZZZZZZZZZZZZ', { type: 'answer' })).toBe(false);

    socket(0).drop();
    await settle();
    await expect(signaling.connectExit('k')).rejects.toMatchObject({ code: 'not-connected' });
    expect(signaling.linkClosed(LINK)).toBe(false);
  });

  it('claims the links it still holds on every new socket, after the load; forgets closed ones', async () => {
    const { clock, signaling, socket } = setup();
    const first = signaling.connect();
    socket(0).accept();
    socket(0).welcome(PEER_A);
    await first;
    signaling.reportLoad(1);
    const offer = (linkId: string) =>
      socket(0).say({ type: 'link', linkId, initiator: false, peer: { peerId: PEER_B, role: 'client' } });
    const other = 'MMMMMMMMMMMMMMMMMMMMMM';
    const closedByBroker = 'NNNNNNNNNNNNNNNNNNNNNN';
    offer(LINK);
    offer(other);
    offer(closedByBroker);
    socket(0).say({ type: 'link-closed', linkId: closedByBroker });
    // The first socket made these links: nothing to claim on it.
    expect(socket(0).sent.filter((m) => m['type'] === 'link-resume')).toEqual([]);

    socket(0).drop();
    await settle();
    // Closed while away: not claimed, and the broker (away) is not told.
    expect(signaling.linkClosed(other)).toBe(false);
    expect(signaling.heldLinkIds).toEqual([LINK]);
    clock.advance(125);
    socket(1).accept();
    socket(1).welcome(PEER_B);
    await settle();
    expect(socket(1).sent.slice(1)).toEqual([
      { type: 'load', load: 1 },
      { type: 'link-resume', linkIds: [LINK] },
    ]);
    // A held link made through the earlier socket is signalled and closed through this one.
    expect(signaling.signal(LINK, { type: 'candidate' })).toBe(true);
    expect(signaling.linkClosed(LINK)).toBe(true);
    expect(socket(1).sent.slice(3)).toEqual([
      { type: 'signal', linkId: LINK, data: { type: 'candidate' } },
      { type: 'link-closed', linkId: LINK },
    ]);
    expect(signaling.heldLinkIds).toEqual([]);

    // Nothing held: a third socket claims nothing.
    socket(1).drop();
    await settle();
    clock.advance(60_000);
    socket(2).accept();
    socket(2).welcome(PEER_A);
    await settle();
    expect(socket(2).sent.filter((m) => m['type'] === 'link-resume')).toEqual([]);
    signaling.close();
  });

  it('claims many links in messages of at most 256 ids', async () => {
    const { clock, signaling, socket } = setup();
    const first = signaling.connect();
    socket(0).accept();
    socket(0).welcome(PEER_A);
    await first;
    const ids = Array.from({ length: 300 }, (_, i) => `link${String(i).padStart(18, '0')}`);
    for (const linkId of ids)
      socket(0).say({ type: 'link', linkId, initiator: false, peer: { peerId: PEER_B, role: 'client' } });
    socket(0).drop();
    await settle();
    clock.advance(125);
    socket(1).accept();
    socket(1).welcome(PEER_B);
    await settle();
    const claims = socket(1).sent.filter((m) => m['type'] === 'link-resume');
    expect(claims).toEqual([
      { type: 'link-resume', linkIds: ids.slice(0, 256) },
      { type: 'link-resume', linkIds: ids.slice(256) },
    ]);
    signaling.close();
  });
});
