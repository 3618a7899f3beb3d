import { afterEach, describe, expect, it } from 'vitest';
import { PeerLink, StripedLink, type Link } from '@underpass/shared/links';
import { connectorPair } from './connector-pair.js';
import { until } from './until.js';

const links: Link[] = [];
afterEach(() => {
  for (const link of links.splice(0)) link.close();
});

/** A link between two PeerConnectors (connector-pair.ts), closed after the test. */
async function connectPair(nearLanes: number, farLanes: number): ReturnType<typeof connectorPair> {
  const pair = await connectorPair(nearLanes, farLanes);
  links.push(pair.near, pair.far);
  return pair;
}

describe('lanes over real WebRTC', () => {
  it('agrees on the lanes both ends allow and carries 20 MB in order over all of them', async () => {
    const { near, far } = await connectPair(4, 3);
    expect(near).toBeInstanceOf(StripedLink);
    expect(far).toBeInstanceOf(StripedLink);
    const nearStriped = near as StripedLink;
    const farStriped = far as StripedLink;
    await until(
      'every lane up on both ends',
      () => nearStriped.laneCount === 3 && farStriped.laneCount === 3,
    );

    const count = 340;
    let next = 0;
    let outOfOrder = 0;
    far.on('message', (message) => {
      const index = new DataView(message.buffer, message.byteOffset).getUint32(0);
      if (index !== next || message.length !== 60_000 || message[59_999] !== index % 251) outOfOrder++;
      next++;
    });
    let sent = 0;
    const sendSome = () => {
      while (sent < count && near.bufferedAmount <= 1024 * 1024) {
        const message = new Uint8Array(60_000);
        new DataView(message.buffer).setUint32(0, sent);
        message[59_999] = sent % 251;
        near.send(message);
        sent++;
      }
    };
    near.on('drain', sendSome);
    sendSome();
    await until('every message delivered', () => next === count, 30_000);
    expect(outOfOrder).toBe(0);
  });

  it('makes a plain link with a peer that names no lanes, either way round', async () => {
    const first = await connectPair(4, 1);
    expect(first.near).toBeInstanceOf(PeerLink);
    expect(first.far).toBeInstanceOf(PeerLink);
    const second = await connectPair(1, 4);
    expect(second.near).toBeInstanceOf(PeerLink);
    expect(second.far).toBeInstanceOf(PeerLink);
    // An initiator that wants one lane says nothing a peer before lanes would not understand.
    expect(JSON.stringify(second.nearSignaling.sent)).not.toContain('lanes');
    const got = new Promise<number[]>((resolve) => second.far.on('message', (m) => resolve([...m])));
    second.near.send(new Uint8Array([1, 2, 3]));
    expect(await got).toEqual([1, 2, 3]);
  });

  for (const lanes of [1, 4]) {
    it(`delivers what was sent just before a close (${lanes} lane${lanes > 1 ? 's' : ''})`, async () => {
      const { near, far } = await connectPair(lanes, lanes);
      if (far instanceof StripedLink) await until('every lane up', () => far.laneCount === lanes);
      const received: number[] = [];
      far.on('message', (message) => received.push(message[0]!));
      const farClosed = new Promise((resolve) => far.on('close', resolve));
      // A client refusing an exit does this: a CLOSE cell per circuit, then the link closed at once.
      for (let index = 0; index < 40; index++) near.send(new Uint8Array(100 + index * 1_000).fill(index));
      near.close();
      await farClosed;
      expect(received).toEqual(Array.from({ length: 40 }, (_, index) => index));
    });
  }

  it('closes the whole link, and tells the broker once, when one lane closes', async () => {
    const { near, far, nearSignaling } = await connectPair(2, 2);
    const nearStriped = near as StripedLink;
    await until('both lanes up', () => nearStriped.laneCount === 2 && (far as StripedLink).laneCount === 2);
    const closed = new Promise((resolve) => near.on('close', resolve));
    far.close();
    expect(await closed).toMatchObject({ code: 'link-closed' });
    expect(nearSignaling.closedLinks).toEqual(['link-1']);
  });
});
