import { describe, expect, it } from 'vitest';
import { memoryLinkPair, type MemoryLink } from '../src/links/memory-link.js';
import {
  NUDGE_MIN_ROUND_TRIP_MS,
  RECEIPT_INTERVAL_MS,
  STICKY_LANE_BYTES,
  STRIPE_HEADER,
  StripedLink,
  type StripedLinkOptions,
} from '../src/links/striped-link.js';
import {
  MAX_RESEND_BYTES,
  STALL_CHECK_MS,
  STALL_ROUND_TRIPS,
  STALL_SLACK_MS,
} from '../src/links/lane-resends.js';
import { MAX_REORDER_BYTES } from '../src/links/reorder-buffer.js';
import { LINK_HIGH_WATER, LINK_LOW_WATER } from '../src/links/link.js';
import type { SessionError } from '../src/errors.js';
import { ManualClock } from '../../test/manual-clock.js';

/** Two striped links joined by `count` memory lanes; `near`'s lanes are the ones a test drives by hand. */
function stripedPair(count: number, options: StripedLinkOptions = {}) {
  const pairs = Array.from({ length: count }, () => memoryLinkPair());
  const nearLanes = pairs.map(([near]) => near);
  const farLanes = pairs.map(([, far]) => far);
  const near = new StripedLink(nearLanes[0]!, options);
  const far = new StripedLink(farLanes[0]!, options);
  for (let lane = 1; lane < count; lane++) {
    near.addLane(nearLanes[lane]!);
    far.addLane(farLanes[lane]!);
  }
  return { near, far, nearLanes, farLanes };
}

function framed(sequence: number, payload: number[]): Uint8Array {
  const bytes = new Uint8Array(STRIPE_HEADER + payload.length);
  new DataView(bytes.buffer).setUint32(0, sequence);
  bytes.set(payload, STRIPE_HEADER);
  return bytes;
}

function received(link: StripedLink): number[][] {
  const got: number[][] = [];
  link.on('message', (message) => got.push([...message]));
  return got;
}

function closedWith(link: StripedLink): Promise<SessionError | undefined> {
  return new Promise((resolve) => link.on('close', resolve));
}

describe('StripedLink', () => {
  it('spreads messages over its idle lanes in turn and delivers them in order', async () => {
    const { near, far, nearLanes } = stripedPair(3);
    for (const lane of nearLanes) lane.recordSent = true;
    const got = received(far);
    for (let i = 0; i < 6; i++) near.send(new Uint8Array([i]));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(got).toEqual([[0], [1], [2], [3], [4], [5]]);
    expect(nearLanes.map((lane) => lane.sent.length)).toEqual([2, 2, 2]);
  });

  it('puts messages that overtook each other on different lanes back in order', () => {
    const { far, farLanes } = stripedPair(2);
    const got = received(far);
    farLanes[1]!.deliver(framed(2, [12]));
    farLanes[1]!.deliver(framed(1, [11]));
    expect(got).toEqual([]);
    farLanes[0]!.deliver(framed(0, [10]));
    expect(got).toEqual([[10], [11], [12]]);
    farLanes[0]!.deliver(framed(3, [13]));
    expect(got).toEqual([[10], [11], [12], [13]]);
    expect(far.closed).toBe(false);
  });

  it('sends on the lane with the least waiting, so a lane slowed by a loss gets less', () => {
    const { near, nearLanes } = stripedPair(3);
    for (const lane of nearLanes) lane.recordSent = true;
    nearLanes[0]!.simulateBuffered(300_000);
    nearLanes[1]!.simulateBuffered(100_000);
    nearLanes[2]!.simulateBuffered(200_000);
    near.send(new Uint8Array([1]));
    expect(nearLanes.map((lane) => lane.sent.length)).toEqual([0, 1, 0]);
  });

  it('is full only when every lane is, and drains when the first of them does', () => {
    const { near, nearLanes } = stripedPair(2);
    let drains = 0;
    near.on('drain', () => drains++);
    nearLanes[0]!.simulateBuffered(LINK_HIGH_WATER + 1);
    expect(near.bufferedAmount).toBe(0);
    nearLanes[1]!.simulateBuffered(LINK_HIGH_WATER + 2);
    expect(near.bufferedAmount).toBe(LINK_HIGH_WATER + 1);
    nearLanes[1]!.simulateBuffered(LINK_LOW_WATER);
    expect(drains).toBe(1);
    expect(near.bufferedAmount).toBe(LINK_LOW_WATER);
  });

  it('holds what arrives before anyone listens, in order', async () => {
    const { near, far } = stripedPair(2);
    near.send(new Uint8Array([1]));
    near.send(new Uint8Array([2]));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(received(far)).toEqual([[1], [2]]);
  });

  describe('hostile far ends', () => {
    it('closes on a message that came twice', async () => {
      const { far, farLanes } = stripedPair(2);
      const closed = closedWith(far);
      farLanes[0]!.deliver(framed(0, [1]));
      farLanes[1]!.deliver(framed(0, [1]));
      expect(await closed).toMatchObject({ code: 'malformed-frame' });
    });

    it('closes on a message held twice while waiting', async () => {
      const { far, farLanes } = stripedPair(2);
      const closed = closedWith(far);
      farLanes[0]!.deliver(framed(5, [1]));
      farLanes[1]!.deliver(framed(5, [1]));
      expect(await closed).toMatchObject({ code: 'malformed-frame' });
    });

    it('closes on a message with no payload', async () => {
      const { far, farLanes } = stripedPair(2);
      const closed = closedWith(far);
      farLanes[0]!.deliver(new Uint8Array([0, 0, 0, 0]));
      expect(await closed).toMatchObject({ code: 'malformed-frame' });
    });

    it('closes with limit when it would hold more than its bound for one missing message', async () => {
      const { far, farLanes } = stripedPair(2);
      const closed = closedWith(far);
      const chunk = new Array<number>(60_000).fill(7);
      let sequence = 1;
      while (!far.closed && sequence < MAX_REORDER_BYTES / 60_000 + 2)
        farLanes[1]!.deliver(framed(sequence++, chunk));
      expect(await closed).toMatchObject({ code: 'limit' });
      expect(sequence).toBeGreaterThan(MAX_REORDER_BYTES / 60_000);
    });
  });

  it('delivers what its other lanes still bring once a lane ended, and closes when every lane has', () => {
    const { far, farLanes } = stripedPair(3);
    const got = received(far);
    let closedWithError: SessionError | undefined;
    far.on('close', (error) => (closedWithError = error));
    // The far end closed its link: each lane ends after its own last messages, in any order.
    farLanes[0]!.deliver(framed(1, [11]));
    farLanes[1]!.close();
    expect(far.closed).toBe(false);
    farLanes[2]!.deliver(framed(0, [10]));
    farLanes[0]!.close();
    expect(far.closed).toBe(false);
    farLanes[2]!.close();
    expect(got).toEqual([[10], [11]]);
    expect(far.closed).toBe(true);
    expect(closedWithError).toMatchObject({
      code: 'link-closed',
      message: expect.stringContaining('a lane'),
    });
  });

  it('once its lanes ended, waits for one still coming up, which may bring what the far end sent on it', () => {
    const [, first] = memoryLinkPair();
    const far = new StripedLink(first, { lanes: 2 });
    const got = received(far);
    first.close();
    expect(far.closed).toBe(false);
    const [, late] = memoryLinkPair();
    far.addLane(late);
    late.deliver(framed(0, [7]));
    late.close();
    expect(got).toEqual([[7]]);
    expect(far.closed).toBe(true);
  });

  it('closes once its lanes ended and the one still coming up gave up', () => {
    const [, first] = memoryLinkPair();
    const far = new StripedLink(first, { lanes: 2 });
    first.close();
    expect(far.closed).toBe(false);
    far.laneGaveUp();
    expect(far.closed).toBe(true);
  });

  it('sends nothing once a lane ended, and closes its other lanes after the wait', () => {
    const clock = new ManualClock();
    const { near, nearLanes } = stripedPair(3, { clock, laneEndWaitMs: 2_000 });
    for (const lane of nearLanes) lane.recordSent = true;
    nearLanes[1]!.close();
    near.send(new Uint8Array([1]));
    expect(nearLanes.map((lane) => lane.sent.length)).toEqual([0, 0, 0]);
    clock.advance(1_999);
    expect(near.closed).toBe(false);
    clock.advance(1);
    expect(near.closed).toBe(true);
    expect(nearLanes.every((lane: MemoryLink) => lane.closed)).toBe(true);
  });

  it('with a silence limit, lives while any lane hears the far end, and ends once none has for the limit', () => {
    const clock = new ManualClock();
    const { near, nearLanes } = stripedPair(3, { clock, silenceLimitMs: 3_000 });
    let closedWith: SessionError | undefined;
    near.on('close', (error) => (closedWith = error));
    // Lanes 1 and 2 hear nothing for 10 s (an SCTP retransmission backoff, say); lane 0 keeps hearing keepalives.
    for (let tick = 0; tick < 20; tick++) {
      near.heard();
      clock.advance(500);
    }
    expect(near.closed).toBe(false);
    clock.advance(2_999);
    expect(near.closed).toBe(false);
    clock.advance(1);
    expect(near.closed).toBe(true);
    expect(closedWith).toMatchObject({
      code: 'link-closed',
      message: 'nothing heard from the far end on any lane for 3000 ms',
    });
    expect(nearLanes.every((lane) => lane.closed)).toBe(true);
  });

  it('without a silence limit leaves silence to its lanes', () => {
    const clock = new ManualClock();
    const { near } = stripedPair(2, { clock });
    clock.advance(60_000);
    expect(near.closed).toBe(false);
  });

  it('closes a lane that joins after it closed', () => {
    const { near } = stripedPair(1);
    near.close();
    const [late] = memoryLinkPair();
    near.addLane(late);
    expect(late.closed).toBe(true);
  });

  describe('with receipts', () => {
    function receipt(bytes: number): Uint8Array {
      const message = new Uint8Array(STRIPE_HEADER);
      new DataView(message.buffer).setUint32(0, bytes);
      return message;
    }
    const receiptValue = (message: Uint8Array) => new DataView(message.buffer).getUint32(0);

    it('tells the sender what arrived on each lane, at most once per interval, and delivers no receipt as data', () => {
      const clock = new ManualClock();
      const { far, farLanes } = stripedPair(2, { receipts: true, clock });
      for (const lane of farLanes) lane.recordSent = true;
      const got = received(far);
      farLanes[0]!.deliver(framed(0, new Array<number>(100).fill(1)));
      // The first message on a lane is receipted at once: 4 bytes of header + 100.
      expect(farLanes[0]!.sent.map(receiptValue)).toEqual([104]);
      farLanes[0]!.deliver(framed(1, new Array<number>(50).fill(2)));
      farLanes[0]!.deliver(framed(2, new Array<number>(50).fill(3)));
      expect(farLanes[0]!.sent).toHaveLength(1);
      clock.advance(RECEIPT_INTERVAL_MS);
      expect(farLanes[0]!.sent.map(receiptValue)).toEqual([104, 212]);
      expect(farLanes[1]!.sent).toHaveLength(0);
      farLanes[1]!.deliver(framed(3, [4]));
      expect(farLanes[1]!.sent.map(receiptValue)).toEqual([5]);
      expect(got.map((message) => message.length)).toEqual([100, 50, 50, 1]);
    });

    it('keeps light traffic on one lane, fills the others in turn, then sends by what each has in flight', () => {
      const { near, nearLanes } = stripedPair(3, { receipts: true });
      for (const lane of nearLanes) lane.recordSent = true;
      const cell = new Uint8Array(16 * 1024 - STRIPE_HEADER);
      const perLane = STICKY_LANE_BYTES / (16 * 1024);
      for (let i = 0; i < perLane; i++) near.send(cell);
      expect(nearLanes.map((lane) => lane.sent.length)).toEqual([perLane, 0, 0]);
      for (let i = 0; i < 2 * perLane; i++) near.send(cell);
      expect(nearLanes.map((lane) => lane.sent.length)).toEqual([perLane, perLane, perLane]);
      expect(near.lanesInFlight).toEqual([STICKY_LANE_BYTES, STICKY_LANE_BYTES, STICKY_LANE_BYTES]);
      // Lane 1 says all it carried arrived: it has the least in flight now.
      nearLanes[1]!.deliver(receipt(STICKY_LANE_BYTES));
      near.send(cell);
      expect(nearLanes.map((lane) => lane.sent.length)).toEqual([perLane, perLane + 1, perLane]);
    });

    it('never sends on a lane above the high-water mark while another has room', () => {
      const { near, nearLanes } = stripedPair(3, { receipts: true });
      for (const lane of nearLanes) lane.recordSent = true;
      const cell = new Uint8Array(STICKY_LANE_BYTES);
      // Lane 0 has the least in flight, but its send buffer is full (SCTP took nothing there).
      nearLanes[0]!.simulateBuffered(LINK_HIGH_WATER + 1);
      near.send(cell);
      near.send(cell);
      near.send(cell);
      // (Lane 2 keeps the third: ties go to the lane used last.)
      expect(nearLanes.map((lane) => lane.sent.length)).toEqual([0, 1, 2]);
      // Every lane full: the emptiest, as without receipts; the sender is told to stop.
      nearLanes[1]!.simulateBuffered(LINK_HIGH_WATER + 3);
      nearLanes[2]!.simulateBuffered(LINK_HIGH_WATER + 2);
      expect(near.bufferedAmount).toBe(LINK_HIGH_WATER + 1);
      near.send(cell);
      expect(nearLanes.map((lane) => lane.sent.length)).toEqual([1, 1, 2]);
    });

    it('nudges a lane after each message once its shortest round trip is long; not before one is timed, not a short one, not with nudges off', () => {
      /** Lane 0 of a one-lane pair whose round trip is timed as `roundTripMs`: what it was asked to nudge. */
      const timedLane = (roundTripMs: number, options: StripedLinkOptions = {}) => {
        const clock = new ManualClock();
        const { near, nearLanes } = stripedPair(1, { receipts: true, clock, ...options });
        const nudged: number[] = [];
        Object.assign(nearLanes[0]!, { nudge: (message: Uint8Array) => nudged.push(message.length) });
        near.send(new Uint8Array(60_000));
        expect(nudged).toEqual([]);
        clock.advance(roundTripMs);
        nearLanes[0]!.deliver(receipt(60_000 + STRIPE_HEADER));
        expect(near.lanesRoundTripMs).toEqual([roundTripMs]);
        near.send(new Uint8Array(60_000));
        return nudged;
      };
      expect(timedLane(NUDGE_MIN_ROUND_TRIP_MS)).toEqual([60_000 + STRIPE_HEADER]);
      expect(timedLane(150)).toEqual([60_000 + STRIPE_HEADER]);
      expect(timedLane(NUDGE_MIN_ROUND_TRIP_MS - 1)).toEqual([]);
      expect(timedLane(150, { nudges: false })).toEqual([]);
    });

    it('keeps the shortest round trip timed, one message at a time', () => {
      const clock = new ManualClock();
      const { near, nearLanes } = stripedPair(1, { receipts: true, clock });
      near.send(new Uint8Array(100)); // timed
      clock.advance(20);
      near.send(new Uint8Array(100)); // not timed: the first is still out
      clock.advance(20);
      nearLanes[0]!.deliver(receipt(104));
      expect(near.lanesRoundTripMs).toEqual([40]);
      near.send(new Uint8Array(100)); // timed
      clock.advance(15);
      nearLanes[0]!.deliver(receipt(312));
      expect(near.lanesRoundTripMs).toEqual([15]);
      near.send(new Uint8Array(100));
      clock.advance(90);
      nearLanes[0]!.deliver(receipt(416));
      expect(near.lanesRoundTripMs).toEqual([15]);
    });

    it('counts receipts across the wrap of their 32-bit counter', () => {
      const { near, nearLanes } = stripedPair(1, { receipts: true });
      const lane = (near as unknown as { lanes: { sent: number; receipted: number }[] }).lanes[0]!;
      lane.sent = lane.receipted = 2 ** 32 - 10;
      near.send(new Uint8Array(16));
      expect(near.lanesInFlight).toEqual([20]);
      nearLanes[0]!.deliver(receipt(10));
      expect(near.lanesInFlight).toEqual([0]);
      expect(near.closed).toBe(false);
    });

    it('closes on a receipt for more than was sent', async () => {
      const { near, nearLanes } = stripedPair(2, { receipts: true });
      const closed = closedWith(near);
      near.send(new Uint8Array(10));
      nearLanes[0]!.deliver(receipt(15));
      expect(await closed).toMatchObject({
        code: 'malformed-frame',
        message: expect.stringContaining('receipt'),
      });
    });

    it('closes on a receipt that goes back', async () => {
      const { near, nearLanes } = stripedPair(1, { receipts: true });
      const closed = closedWith(near);
      near.send(new Uint8Array(10));
      nearLanes[0]!.deliver(receipt(14));
      near.send(new Uint8Array(10));
      nearLanes[0]!.deliver(receipt(4));
      expect(await closed).toMatchObject({ code: 'malformed-frame' });
    });

    it('closes on a message shorter than a receipt', async () => {
      const { far, farLanes } = stripedPair(1, { receipts: true });
      const closed = closedWith(far);
      farLanes[0]!.deliver(new Uint8Array([0, 0, 1]));
      expect(await closed).toMatchObject({ code: 'malformed-frame' });
    });

    it('takes a receipt for a malformed message where none were agreed', async () => {
      const { near, nearLanes } = stripedPair(1);
      const closed = closedWith(near);
      near.send(new Uint8Array(10));
      nearLanes[0]!.deliver(receipt(14));
      expect(await closed).toMatchObject({ code: 'malformed-frame' });
    });

    it('sends no receipt due after it closed', () => {
      const clock = new ManualClock();
      const { far, farLanes } = stripedPair(1, { receipts: true, clock });
      farLanes[0]!.recordSent = true;
      received(far);
      farLanes[0]!.deliver(framed(0, [1]));
      farLanes[0]!.deliver(framed(1, [2]));
      expect(clock.pending).toBe(1);
      far.close();
      expect(clock.pending).toBe(0);
      expect(farLanes[0]!.sent).toHaveLength(1);
    });

    describe('with resends', () => {
      /**
       * A sender with resends over `count` lanes whose far ends are plain memory links: a test receipts by hand.
       * Each lane's round trip is timed at 100 ms by a first 96-byte message.
       */
      function sender(count: number) {
        const clock = new ManualClock();
        const pairs = Array.from({ length: count }, () => memoryLinkPair());
        const lanes = pairs.map(([near]) => near);
        const link = new StripedLink(lanes[0]!, { receipts: true, resends: true, clock });
        for (const lane of lanes.slice(1)) link.addLane(lane);
        for (const lane of lanes) lane.recordSent = true;
        const receipted = lanes.map(() => 0);
        /** The far end of lane `index` says everything sent on it so far arrived. */
        const receiptAll = (index: number) => {
          receipted[index] = lanes[index]!.sent.reduce((sum, message) => sum + message.length, 0);
          lanes[index]!.deliver(receipt(receipted[index]));
        };
        for (let index = 0; index < count; index++) {
          // Sticky: each small message stays on lane 0 unless it is busy; make each lane busy in turn.
          lanes.forEach((lane, other) => lane.simulateBuffered(other === index ? 0 : LINK_HIGH_WATER + 1));
          link.send(new Uint8Array(96));
        }
        for (const lane of lanes) lane.simulateBuffered(0);
        clock.advance(100);
        for (let index = 0; index < count; index++) receiptAll(index);
        const sequences = (index: number) =>
          lanes[index]!.sent.map((message) => new DataView(message.buffer).getUint32(0));
        return { clock, link, lanes, receiptAll, sequences };
      }
      const stallMs = STALL_ROUND_TRIPS * 100 + STALL_SLACK_MS;

      it("puts a stalled lane's messages on another lane, in order, and gives it nothing new until it catches up", () => {
        const { clock, link, lanes, receiptAll, sequences } = sender(2);
        expect(link.lanesRoundTripMs).toEqual([100, 100]);
        const cell = new Uint8Array(40_000);
        for (let i = 0; i < 3; i++) link.send(cell); // 2, 3 on lane 1 (the last used, sticky), 4 on lane 0
        expect([sequences(0), sequences(1)]).toEqual([
          [0, 4],
          [1, 2, 3],
        ]);
        clock.advance(100);
        receiptAll(0); // lane 0 moves; lane 1 does not
        clock.advance(stallMs - 100 - 1);
        expect(sequences(0)).toEqual([0, 4]);
        expect(link.resentMessages).toBe(0);
        clock.advance(STALL_CHECK_MS);
        expect(sequences(0)).toEqual([0, 4, 2, 3]);
        expect(link.resentMessages).toBe(2);
        // Lane 1 is suspended: lane 0 takes the next, though it has more in flight.
        link.send(cell);
        expect(sequences(0)).toEqual([0, 4, 2, 3, 5]);
        // Once all lane 1 carried is receipted, it takes messages again.
        receiptAll(1);
        receiptAll(0);
        lanes[0]!.simulateBuffered(LINK_HIGH_WATER + 1);
        link.send(cell);
        expect(sequences(1)).toEqual([1, 2, 3, 6]);
        expect(link.closed).toBe(false);
      });

      it('resends nothing while no other lane is receipted either (a far end slow to read)', () => {
        const { clock, link, sequences } = sender(2);
        const cell = new Uint8Array(40_000);
        for (let i = 0; i < 4; i++) link.send(cell);
        clock.advance(10 * stallMs);
        expect(link.resentMessages).toBe(0);
        expect([sequences(0), sequences(1)]).toEqual([
          [0, 4, 5],
          [1, 2, 3],
        ]);
      });

      it('keeps no copies past its bound, so a far end withholding receipts cannot make it hold all it sends', () => {
        const { clock, link, lanes, receiptAll, sequences } = sender(2);
        lanes[1]!.simulateBuffered(LINK_HIGH_WATER + 1); // all to lane 0
        const piece = new Uint8Array(1024 * 1024);
        for (let i = 0; i <= MAX_RESEND_BYTES / piece.length; i++) link.send(piece);
        lanes[1]!.simulateBuffered(0);
        clock.advance(100);
        receiptAll(1);
        clock.advance(10 * stallMs);
        expect(link.resentMessages).toBe(0);
        expect(sequences(1)).toEqual([1]);
      });

      it('delivers every message in order over a lane that stops carrying anything, and drops the late copies', async () => {
        const clock = new ManualClock();
        const { near, far, nearLanes } = stripedPair(2, { receipts: true, resends: true, clock });
        const got = received(far);
        const flush = () => new Promise((resolve) => setTimeout(resolve, 0));
        // Time both lanes' round trips (the far end receipts the first message on a lane at once).
        for (let i = 0; i < 2; i++) {
          nearLanes.forEach((lane, other) => lane.simulateBuffered(other === i ? 0 : LINK_HIGH_WATER + 1));
          near.send(new Uint8Array([i]));
        }
        for (const lane of nearLanes) lane.simulateBuffered(0);
        clock.advance(100);
        await flush();
        expect(near.lanesRoundTripMs).toEqual([100, 100]);
        // Lane 0 stops carrying anything, but keeps what it was given, to deliver it late.
        const late: Uint8Array[] = [];
        const forward = nearLanes[0]!.send.bind(nearLanes[0]!);
        nearLanes[0]!.send = (message) => void late.push(message);
        for (let i = 2; i < 40; i++) {
          // The first few on lane 0, where they stay; the rest on lane 1, which the far end receipts.
          nearLanes[1]!.simulateBuffered(i < 5 ? LINK_HIGH_WATER + 1 : 0);
          near.send(new Uint8Array(20_000).fill(i));
          clock.advance(5);
          await flush();
        }
        expect(got.map((message) => message[0])).toEqual([0, 1]);
        clock.advance(STALL_ROUND_TRIPS * 100 + STALL_SLACK_MS + STALL_CHECK_MS);
        await flush();
        expect(near.resentMessages).toBeGreaterThan(0);
        expect(got.map((message) => message[0])).toEqual(Array.from({ length: 40 }, (_, i) => i));
        // What lane 0 held arrives at last: copies of what came already, dropped.
        for (const message of late) forward(message);
        clock.advance(RECEIPT_INTERVAL_MS);
        await flush();
        expect(got).toHaveLength(40);
        expect(far.closed).toBe(false);
        expect(near.closed).toBe(false);
      });

      it('paces a burst on a long path to 1.5 × what was receipted over a round trip, counting what waits as buffered', () => {
        const { clock, link, lanes, receiptAll, sequences } = sender(2);
        const drains: number[] = [];
        link.on('drain', () => drains.push(clock.now()));
        const cell = new Uint8Array(60_000);
        const framedCell = cell.length + STRIPE_HEADER;
        // No rate yet: 480 kB at once (on lane 0: lane 1 is full), receipted a round trip later: 4,800 B/ms.
        lanes[1]!.simulateBuffered(LINK_HIGH_WATER + 1);
        for (let i = 0; i < 8; i++) link.send(cell);
        lanes[1]!.simulateBuffered(0);
        clock.advance(100);
        receiptAll(0);
        const out = () => lanes.reduce((sum, lane) => sum + lane.sent.length, 0);
        const before = out();
        // Paced at 1.5 × 4,800 B/ms once a burst (256 KiB) is out: 4 cells at once, the 5th 6 ms later, the 6th 8 ms after.
        for (let i = 0; i < 10; i++) link.send(cell);
        expect(out() - before).toBe(4);
        expect(link.bufferedAmount).toBe(6 * framedCell);
        clock.advance(5);
        expect(out() - before).toBe(4);
        clock.advance(1);
        expect(out() - before).toBe(5);
        clock.advance(7);
        expect(out() - before).toBe(5);
        clock.advance(1);
        expect(out() - before).toBe(6);
        clock.advance(40);
        expect(out() - before).toBe(10);
        expect(link.bufferedAmount).toBe(0);
        // In order, whichever lane each went on.
        const all = [...sequences(0), ...sequences(1)].sort((a, b) => a - b);
        expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i));
        for (const index of [0, 1])
          expect(sequences(index)).toEqual([...sequences(index)].sort((a, b) => a - b));
        // Past the high-water mark a sender is told to stop, and gets its drain once the pacer let enough out.
        receiptAll(0);
        receiptAll(1);
        for (let i = 0; i < 24; i++) link.send(cell);
        expect(link.bufferedAmount).toBeGreaterThan(LINK_HIGH_WATER);
        expect(drains).toEqual([]);
        clock.advance(1_000);
        expect(drains).toHaveLength(1);
        expect(link.bufferedAmount).toBe(0);
      });

      it('announces the drain that bytes waiting for the pacer made owed, once they are out in lanes with room', () => {
        const { clock, link, lanes, receiptAll } = sender(2);
        const drains: number[] = [];
        link.on('drain', () => drains.push(clock.now()));
        const cell = new Uint8Array(60_000);
        // A rate, as above: 480 kB on lane 0, receipted a round trip later.
        lanes[1]!.simulateBuffered(LINK_HIGH_WATER + 1);
        for (let i = 0; i < 8; i++) link.send(cell);
        lanes[1]!.simulateBuffered(0);
        clock.advance(100);
        receiptAll(0);
        // Lanes that keep what they are given between the marks (a loaded machine): neither owes a drain of
        // its own, so only the link can tell its sender that it has room again.
        for (const lane of lanes) lane.simulateBuffered(LINK_LOW_WATER + 1);
        for (let i = 0; i < 24; i++) link.send(cell);
        expect(link.bufferedAmount).toBeGreaterThan(LINK_HIGH_WATER);
        clock.advance(1_000);
        expect(link.pacedBytesWaiting).toBe(0);
        expect(drains).toHaveLength(1);
        expect(link.bufferedAmount).toBeLessThanOrEqual(LINK_HIGH_WATER);
      });

      it('does not pace a link with a short round trip, nor with pacing off', () => {
        for (const options of [
          { roundTripMs: NUDGE_MIN_ROUND_TRIP_MS - 1 },
          { roundTripMs: 100, pacing: false },
        ]) {
          const clock = new ManualClock();
          const [near, far] = memoryLinkPair();
          const link = new StripedLink(near, { receipts: true, clock, pacing: options.pacing });
          far.on('message', () => undefined);
          near.recordSent = true;
          link.send(new Uint8Array(1_000));
          clock.advance(options.roundTripMs);
          near.deliver(receipt(1_004));
          link.send(new Uint8Array(100_000));
          clock.advance(options.roundTripMs);
          near.deliver(receipt(101_008));
          for (let i = 0; i < 20; i++) link.send(new Uint8Array(60_000));
          expect(near.sent).toHaveLength(22);
        }
      });

      it('takes a copy for a violation where resends were not agreed', async () => {
        const { far, farLanes } = stripedPair(2, { receipts: true });
        const closed = closedWith(far);
        received(far);
        farLanes[0]!.deliver(framed(0, [1]));
        farLanes[1]!.deliver(framed(0, [1]));
        expect(await closed).toMatchObject({ code: 'malformed-frame' });
      });

      it('drops a copy of a message delivered or held already where resends were agreed', () => {
        const { far, farLanes } = stripedPair(2, { receipts: true, resends: true });
        const got = received(far);
        farLanes[0]!.deliver(framed(0, [10]));
        farLanes[0]!.deliver(framed(2, [12]));
        farLanes[1]!.deliver(framed(0, [10]));
        farLanes[1]!.deliver(framed(2, [12]));
        farLanes[1]!.deliver(framed(1, [11]));
        expect(got).toEqual([[10], [11], [12]]);
        expect(far.closed).toBe(false);
      });
    });
  });
});
