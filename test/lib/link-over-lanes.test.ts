/**
 * The benchmarks' link over N lanes (bench/lib/link-over-lanes.ts) over real WebRTC (@roamhq/wrtc, as the
 * benches run it), its signals handed across as the benches' IPC does (JSON, each end's to the other's).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PeerLink, StripedLink, type Link } from '@underpass/shared/links';
import { nodePeerFactory } from '../../exit-node/src/node-peer.js';
import { LinkOverLanes } from '../../bench/lib/link-over-lanes.js';

const ends: LinkOverLanes[] = [];
afterEach(() => {
  for (const end of ends.splice(0)) end.destroy();
});

function pair(lanes: number): { near: LinkOverLanes; far: LinkOverLanes; signals: unknown[] } {
  const signals: unknown[] = [];
  const ipc = (to: () => LinkOverLanes) => (data: unknown) => {
    signals.push(data);
    const copy: unknown = JSON.parse(JSON.stringify(data));
    queueMicrotask(() => to().signal(copy));
  };
  const createPeer = nodePeerFactory();
  const near: LinkOverLanes = new LinkOverLanes({
    createPeer,
    initiator: true,
    lanes,
    sendSignal: ipc(() => far),
  });
  const far: LinkOverLanes = new LinkOverLanes({
    createPeer,
    initiator: false,
    lanes,
    sendSignal: ipc(() => near),
  });
  ends.push(near, far);
  return { near, far, signals };
}

/** Sends `count` numbered messages of `size` bytes, then resolves with how many the far end got out of order. */
function carry(from: Link, to: Link, count: number, size: number): Promise<number> {
  return new Promise((resolve) => {
    let next = 0;
    let outOfOrder = 0;
    to.on('message', (message) => {
      if (new DataView(message.buffer, message.byteOffset).getUint32(0) !== next) outOfOrder++;
      if (++next === count) resolve(outOfOrder);
    });
    for (let index = 0; index < count; index++) {
      const message = new Uint8Array(size);
      new DataView(message.buffer).setUint32(0, index);
      from.send(message);
    }
  });
}

describe('LinkOverLanes', () => {
  it('brings up every lane, wrapping all but lane 0’s signals, and carries messages in order both ways', async () => {
    const { near, far, signals } = pair(3);
    const [nearLink, farLink] = await Promise.all([near.connected, far.connected]);
    expect(nearLink).toBeInstanceOf(StripedLink);
    expect((nearLink as StripedLink).laneCount).toBe(3);
    expect((farLink as StripedLink).laneCount).toBe(3);
    const lanesSignalled = new Set(signals.map((data) => (data as { lane?: number }).lane ?? 0));
    expect(lanesSignalled).toEqual(new Set([0, 1, 2]));
    // Fewer than a lane's high-water mark each way: no need to wait for drains.
    expect(await carry(nearLink, farLink, 200, 4_000)).toBe(0);
    expect(await carry(farLink, nearLink, 200, 4_000)).toBe(0);
  });

  it('makes a plain PeerLink of one lane, its signals simple-peer’s own', async () => {
    const { near, far, signals } = pair(1);
    const [nearLink, farLink] = await Promise.all([near.connected, far.connected]);
    expect(nearLink).toBeInstanceOf(PeerLink);
    expect(farLink).toBeInstanceOf(PeerLink);
    expect(signals.some((data) => 'lane' in (data as object))).toBe(false);
    expect(await carry(nearLink, farLink, 10, 100)).toBe(0);
  });

  it('closes the link when destroyed', async () => {
    const { near, far } = pair(2);
    const [nearLink, farLink] = await Promise.all([near.connected, far.connected]);
    const closed = [nearLink, farLink].map((link) => new Promise((resolve) => link.on('close', resolve)));
    near.destroy();
    await Promise.all(closed);
    // A late signal after destroy goes nowhere.
    expect(() => near.signal({ lane: 1, signal: { candidate: {} } })).not.toThrow();
  });

  it('refuses a lane count out of range and signals for lanes it does not have', () => {
    const options = { createPeer: nodePeerFactory(), initiator: true, sendSignal: () => {} };
    expect(() => new LinkOverLanes({ ...options, lanes: 0 })).toThrow(RangeError);
    expect(() => new LinkOverLanes({ ...options, lanes: 9 })).toThrow(RangeError);
    expect(() => new LinkOverLanes({ ...options, lanes: 1.5 })).toThrow(RangeError);
    const end = new LinkOverLanes({ ...options, lanes: 2 });
    ends.push(end);
    end.connected.catch(() => {});
    expect(() => end.signal({ lane: 2, signal: { candidate: {} } })).toThrow(/lane 2 of a link with 2/);
    expect(() => end.signal('offer')).toThrow(/malformed/);
    expect(() => end.signal({ lane: 1, signal: 'x' })).toThrow(/malformed/);
  });
});
