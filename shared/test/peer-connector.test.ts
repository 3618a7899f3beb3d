import { afterEach, describe, expect, it, vi } from 'vitest';
import { Emitter } from '../src/emitter.js';
import { FakePeer } from './helpers.js';
import {
  BROKER_CLOSE_GRACE_MS,
  DEFAULT_ANSWER_TIMEOUT_MS,
  PeerConnector,
  type SignalingChannel,
} from '../src/links/peer-connector.js';
import { PeerLink, type SimplePeerLike } from '../src/links/peer-link.js';
import { StripedLink } from '../src/links/striped-link.js';
import { DEFAULT_LINK_GOODBYE_WAIT_MS, LINK_GOODBYE_MESSAGE } from '../src/links/link-goodbye.js';
import {
  DEFAULT_LANE_SILENCE_LIMIT_MS,
  DEFAULT_LINK_SILENCE_LIMIT_MS,
  LINK_KEEPALIVE_MESSAGE,
} from '../src/links/link-keepalive.js';

class FakeSignaling
  extends Emitter<{ signal: [linkId: string, data: unknown]; 'link-closed': [linkId: string] }>
  implements SignalingChannel
{
  readonly closedLinks: string[] = [];
  /** Every `signal.data` this end sent, for the broker to carry. */
  readonly sent: unknown[] = [];
  signal(_linkId: string, data: unknown): void {
    this.sent.push(data);
  }
  /** A signal from the far side, relayed by the broker. */
  deliver(linkId: string, data: unknown): void {
    this.emit('signal', linkId, data);
  }
  /** The broker's word that the far end closed the link. */
  brokerClosed(linkId: string): void {
    this.emit('link-closed', linkId);
  }
  linkClosed(linkId: string): void {
    this.closedLinks.push(linkId);
  }
}

function setup(connectTimeoutMs?: number) {
  const signaling = new FakeSignaling();
  const peers: FakePeer[] = [];
  const connector = new PeerConnector({
    signaling,
    createPeer: () => {
      const peer = new FakePeer({ closeWhenDestroyed: true });
      peers.push(peer);
      return peer as unknown as SimplePeerLike;
    },
    ...(connectTimeoutMs === undefined ? {} : { connectTimeoutMs }),
  });
  return { signaling, peers, connector };
}

describe('PeerConnector', () => {
  afterEach(() => vi.useRealTimers());

  it('hands signals that came early to the peer, and a PeerLink once it connects', async () => {
    const { signaling, peers, connector } = setup();
    signaling.deliver('link-1', { sdp: 'offer' });
    const link = connector.connect('link-1', false);
    expect(peers[0]!.signals).toEqual([{ sdp: 'offer' }]);
    peers[0]!.connectNow();
    expect(await link).toBeInstanceOf(PeerLink);
    // Closed later: the broker hears of it.
    peers[0]!.closeNow();
    expect(signaling.closedLinks).toEqual(['link-1']);
  });

  it('lets an open link the broker says was closed take its last messages, then closes it if they stop', async () => {
    vi.useFakeTimers();
    const { signaling, peers, connector } = setup();
    const pending = connector.connect('link-1', true);
    peers[0]!.connectNow();
    const link = await pending;
    const heard: number[] = [];
    let closedWith: string | undefined;
    link.on('message', (message) => heard.push(message[5]!));
    link.on('close', (error) => (closedWith = error?.message));
    signaling.brokerClosed('link-1');
    // Its far end's last messages, still on their way, arrive after the broker's word.
    peers[0]!.receive(Uint8Array.of(3, 0, 0, 0, 1, 7));
    vi.advanceTimersByTime(BROKER_CLOSE_GRACE_MS - 1);
    expect(link.closed).toBe(false);
    expect(heard).toEqual([7]);
    vi.advanceTimersByTime(1);
    expect(closedWith).toBe('the broker closed the link');
  });

  it('gives up, as initiator, a link whose far end says nothing at all within the answer timeout', async () => {
    vi.useFakeTimers();
    const { signaling, peers, connector } = setup();
    const unanswered = connector.connect('link-1', true);
    const outcome = unanswered.catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(DEFAULT_ANSWER_TIMEOUT_MS);
    expect(await outcome).toMatchObject({
      code: 'link-closed',
      message: 'the far end did not answer the offer in time',
    });
    expect(peers[0]!.destroyed).toBe(true);
    expect(signaling.closedLinks).toEqual(['link-1']);

    // A far end that answered, however slowly its link then comes up, is waited for as before.
    const answered = connector.connect('link-2', true);
    await vi.advanceTimersByTimeAsync(DEFAULT_ANSWER_TIMEOUT_MS - 1);
    signaling.deliver('link-2', { type: 'answer', sdp: 'a' });
    await vi.advanceTimersByTimeAsync(DEFAULT_ANSWER_TIMEOUT_MS);
    peers[1]!.connectNow();
    expect(await answered).toBeInstanceOf(PeerLink);
  });

  it('says when every connection it made has ended: once the far ends read the goodbyes, or after the wait', async () => {
    vi.useFakeTimers();
    const { peers, connector } = setup();
    await expect(connector.connectionsEnded()).resolves.toBeUndefined(); // none yet
    const links = [connector.connect('link-1', true), connector.connect('link-2', true)];
    for (const peer of peers) peer.connectNow();
    for (const link of await Promise.all(links)) link.close();
    let ended = false;
    void connector.connectionsEnded().then(() => (ended = true));
    peers[0]!.closeNow(); // the far end read link-1's goodbye and ended the connection
    await vi.advanceTimersByTimeAsync(0);
    expect(ended).toBe(false);
    peers[1]!.closeNow();
    await vi.advanceTimersByTimeAsync(0);
    expect(ended).toBe(true);

    // A far end that never answers holds the wait no longer than the goodbye's own.
    const silent = connector.connect('link-3', true);
    peers[2]!.connectNow();
    (await silent).close();
    let gaveUp = false;
    void connector.connectionsEnded().then(() => (gaveUp = true));
    await vi.advanceTimersByTimeAsync(DEFAULT_LINK_GOODBYE_WAIT_MS);
    expect(peers[2]!.destroyed).toBe(true); // the link's own wait ended it
    await vi.advanceTimersByTimeAsync(0);
    expect(gaveUp).toBe(true);
  });

  it('gives up a link that does not come up in time: the peer destroyed, the broker told once', async () => {
    vi.useFakeTimers();
    const { signaling, peers, connector } = setup(5_000);
    const outcome = connector
      .connect('link-2', true)
      .catch((error: { code: string; message: string }) => error);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await outcome).toMatchObject({ code: 'link-closed', message: expect.stringContaining('in time') });
    expect(peers[0]!.destroyed).toBe(true);
    await vi.waitFor(() => expect(peers[0]!.closed).toBe(true));
    expect(signaling.closedLinks).toEqual(['link-2']);
  });

  it('fails with link-closed when WebRTC fails before connecting, and tells the broker once', async () => {
    const { signaling, peers, connector } = setup();
    const outcome = connector
      .connect('link-3', true)
      .catch((error: { code: string; message: string }) => error);
    peers[0]!.fail(new Error('ICE failed'));
    expect(await outcome).toMatchObject({ code: 'link-closed', message: 'WebRTC failed: ICE failed' });
    expect(peers[0]!.destroyed).toBe(true);
    await vi.waitFor(() => expect(peers[0]!.closed).toBe(true)); // the close that destroy() emits
    expect(signaling.closedLinks).toEqual(['link-3']);
  });

  it('reports the error that ends a peer before it connects, though simple-peer 10 ends its stream first', async () => {
    const { peers, connector } = setup();
    const outcome = connector
      .connect('link-4', true)
      .catch((error: { code: string; message: string }) => error);
    // simple-peer 10's teardown: it sets a zero timer that will emit the error, then ends its stream.
    setTimeout(() => peers[0]!.fail(new Error('Failed to add ICE candidate')), 0);
    peers[0]!.endNow();
    expect(await outcome).toMatchObject({
      code: 'link-closed',
      message: 'WebRTC failed: Failed to add ICE candidate',
    });
    // With no error to follow, what ended it.
    const quiet = connector.connect('link-5', true).catch((error: { message: string }) => error);
    peers[1]!.endNow();
    expect(await quiet).toMatchObject({
      message: 'the peer closed before connecting (the far end closed the link)',
    });
  });
});

describe('PeerConnector: lanes', () => {
  function lanesSetup(lanes: number, laneReceipts = true, laneResends = true) {
    const signaling = new FakeSignaling();
    const sent = signaling.sent;
    const peers: FakePeer[] = [];
    const connector = new PeerConnector({
      signaling,
      lanes,
      laneReceipts,
      laneResends,
      createPeer: () => {
        const peer = new FakePeer({ closeWhenDestroyed: true });
        peers.push(peer);
        return peer as unknown as SimplePeerLike;
      },
    });
    return { signaling, sent, peers, connector };
  }

  it('asks for its lanes in the offer, sets up the ones agreed once answered, and adds them as they open', async () => {
    const { signaling, sent, peers, connector } = lanesSetup(4);
    const link = connector.connect('link-1', true);
    peers[0]!.signalOut({ type: 'offer', sdp: 'o' });
    expect(sent).toEqual([{ type: 'offer', sdp: 'o', lanes: 4, receipts: true, resends: true }]);
    signaling.deliver('link-1', { type: 'answer', sdp: 'a', lanes: 2, receipts: true, resends: true });
    // simple-peer gets its own object, without our field.
    expect(peers[0]!.signals).toEqual([{ type: 'answer', sdp: 'a' }]);
    expect(peers).toHaveLength(2);
    peers[1]!.signalOut({ type: 'offer', sdp: 'o1' });
    expect(sent[1]).toEqual({ lane: 1, signal: { type: 'offer', sdp: 'o1' } });
    signaling.deliver('link-1', { lane: 1, signal: { type: 'answer', sdp: 'a1' } });
    expect(peers[1]!.signals).toEqual([{ type: 'answer', sdp: 'a1' }]);
    peers[0]!.connectNow();
    const striped = await link;
    expect(striped).toBeInstanceOf(StripedLink);
    expect((striped as StripedLink).laneCount).toBe(1);
    expect((striped as StripedLink).receipts).toBe(true);
    expect((striped as StripedLink).resends).toBe(true);
    peers[1]!.connectNow();
    expect((striped as StripedLink).laneCount).toBe(2);
  });

  it('agrees, as responder, to no more lanes than it allows, and names none to a peer that named none', async () => {
    const asked = lanesSetup(2);
    void signalAndAnswer(asked, { type: 'offer', sdp: 'o', lanes: 8, receipts: true, resends: true });
    expect(asked.sent).toEqual([{ type: 'answer', sdp: 'a', lanes: 2, receipts: true, resends: true }]);
    expect(asked.peers).toHaveLength(2);

    const plain = lanesSetup(4);
    const plainLink = signalAndAnswer(plain, { type: 'offer', sdp: 'o' });
    expect(plain.sent).toEqual([{ type: 'answer', sdp: 'a' }]);
    expect(plain.peers).toHaveLength(1);
    plain.peers[0]!.connectNow();
    expect(await plainLink).toBeInstanceOf(PeerLink);
  });

  it('names receipts and resends unless told not to', () => {
    const signaling = new FakeSignaling();
    const peers: FakePeer[] = [];
    const connector = new PeerConnector({
      signaling,
      lanes: 2,
      createPeer: () => {
        const peer = new FakePeer();
        peers.push(peer);
        return peer as unknown as SimplePeerLike;
      },
    });
    void connector.connect('link-1', true).catch(() => undefined);
    peers[0]!.signalOut({ type: 'offer', sdp: 'o' });
    expect(signaling.sent).toEqual([{ type: 'offer', sdp: 'o', lanes: 2, receipts: true, resends: true }]);
  });

  it('uses resends only when both the offer and the answer name them, and only beside receipts', async () => {
    const resendsOf = async (ends: ReturnType<typeof lanesSetup>, link: Promise<unknown>) => {
      ends.peers[0]!.connectNow();
      return ((await link) as StripedLink).resends;
    };
    // A responder from before resends answers with receipts only.
    const initiator = lanesSetup(2);
    const initiated = initiator.connector.connect('link-1', true);
    initiator.signaling.deliver('link-1', { type: 'answer', sdp: 'a', lanes: 2, receipts: true });
    expect(await resendsOf(initiator, initiated)).toBe(false);
    // An initiator from before resends: the answer names none either.
    const responder = lanesSetup(2);
    const answered = signalAndAnswer(responder, { type: 'offer', sdp: 'o', lanes: 2, receipts: true });
    expect(responder.sent).toEqual([{ type: 'answer', sdp: 'a', lanes: 2, receipts: true }]);
    expect(await resendsOf(responder, answered)).toBe(false);
    // Both name them: the answer too, and simple-peer never sees the field.
    const both = lanesSetup(2);
    const bothLink = signalAndAnswer(both, {
      type: 'offer',
      sdp: 'o',
      lanes: 2,
      receipts: true,
      resends: true,
    });
    expect(both.sent).toEqual([{ type: 'answer', sdp: 'a', lanes: 2, receipts: true, resends: true }]);
    expect(both.peers[0]!.signals).toEqual([{ type: 'offer', sdp: 'o' }]);
    expect(await resendsOf(both, bothLink)).toBe(true);
    // Without receipts, none: resends need them to see a stall.
    const noReceipts = lanesSetup(2);
    const noReceiptsLink = signalAndAnswer(noReceipts, { type: 'offer', sdp: 'o', lanes: 2, resends: true });
    expect(noReceipts.sent).toEqual([{ type: 'answer', sdp: 'a', lanes: 2 }]);
    expect(await resendsOf(noReceipts, noReceiptsLink)).toBe(false);
    // Turned off here: named neither way, used not even when the far end names them.
    const off = lanesSetup(2, true, false);
    const offLink = signalAndAnswer(off, {
      type: 'offer',
      sdp: 'o',
      lanes: 2,
      receipts: true,
      resends: true,
    });
    expect(off.sent).toEqual([{ type: 'answer', sdp: 'a', lanes: 2, receipts: true }]);
    expect(await resendsOf(off, offLink)).toBe(false);
  });

  it('uses receipts only when both the offer and the answer name them', async () => {
    const receiptsOf = async (ends: ReturnType<typeof lanesSetup>, link: Promise<unknown>) => {
      ends.peers[0]!.connectNow();
      return ((await link) as StripedLink).receipts;
    };
    // A responder from before receipts answers with lanes only.
    const initiator = lanesSetup(2);
    const initiated = initiator.connector.connect('link-1', true);
    initiator.signaling.deliver('link-1', { type: 'answer', sdp: 'a', lanes: 2 });
    expect(await receiptsOf(initiator, initiated)).toBe(false);
    // An initiator from before receipts offers lanes only: the answer names none either.
    const responder = lanesSetup(2);
    const answered = signalAndAnswer(responder, { type: 'offer', sdp: 'o', lanes: 2 });
    expect(responder.sent).toEqual([{ type: 'answer', sdp: 'a', lanes: 2 }]);
    expect(await receiptsOf(responder, answered)).toBe(false);
    // Turned off here (bench:wan --lane-receipts off): named neither way.
    const off = lanesSetup(2, false);
    const offLink = off.connector.connect('link-1', true);
    off.peers[0]!.signalOut({ type: 'offer', sdp: 'o' });
    expect(off.sent).toEqual([{ type: 'offer', sdp: 'o', lanes: 2 }]);
    off.signaling.deliver('link-1', { type: 'answer', sdp: 'a', lanes: 2, receipts: true });
    expect(await receiptsOf(off, offLink)).toBe(false);
    const offResponder = lanesSetup(2, false);
    void signalAndAnswer(offResponder, { type: 'offer', sdp: 'o', lanes: 2, receipts: true });
    expect(offResponder.sent).toEqual([{ type: 'answer', sdp: 'a', lanes: 2 }]);
    // Anything but `true` names none; simple-peer never sees the field.
    const odd = lanesSetup(2);
    const oddLink = signalAndAnswer(odd, { type: 'offer', sdp: 'o', lanes: 2, receipts: 'yes' });
    expect(odd.peers[0]!.signals).toEqual([{ type: 'offer', sdp: 'o' }]);
    expect(await receiptsOf(odd, oddLink)).toBe(false);
  });

  it('goes on without a further lane that fails to come up', async () => {
    const { signaling, peers, connector } = lanesSetup(3);
    const link = connector.connect('link-1', true);
    signaling.deliver('link-1', { type: 'answer', sdp: 'a', lanes: 3 });
    peers[0]!.connectNow();
    const striped = (await link) as StripedLink;
    peers[1]!.fail(new Error('ICE failed'));
    peers[2]!.connectNow();
    expect(striped.laneCount).toBe(2);
    expect(striped.closed).toBe(false);
    // Signals still on their way for the lane given up go nowhere.
    signaling.deliver('link-1', { lane: 1, signal: { candidate: 'c' } });
    expect(striped.closed).toBe(false);
  });

  it('leaves a lane still coming up when the link closes: it says goodbye once open, or goes after the wait', async () => {
    vi.useFakeTimers();
    try {
      const { signaling, peers, connector } = lanesSetup(3);
      const link = connector.connect('link-1', true);
      signaling.deliver('link-1', { type: 'answer', sdp: 'a', lanes: 3 });
      peers[0]!.connectNow();
      const striped = (await link) as StripedLink;
      striped.close();
      // The far end may have these open already: torn down now, they would be aborted under its sends.
      expect(peers[1]!.destroyed).toBe(false);
      expect(peers[2]!.destroyed).toBe(false);
      peers[1]!.connectNow();
      expect(peers[1]!.sent).toEqual([LINK_GOODBYE_MESSAGE]);
      vi.advanceTimersByTime(DEFAULT_LINK_GOODBYE_WAIT_MS);
      expect(peers[2]!.destroyed).toBe(true);
      expect(peers[1]!.destroyed).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  /** A link over two lanes, both open. */
  async function twoLanesUp() {
    const { signaling, peers, connector } = lanesSetup(2);
    const link = connector.connect('link-1', true);
    signaling.deliver('link-1', { type: 'answer', sdp: 'a', lanes: 2 });
    peers[0]!.connectNow();
    const striped = (await link) as StripedLink;
    peers[1]!.connectNow();
    return { peers, striped };
  }

  it('judges silence over all lanes: one lane silent past 3 s keeps the link while another hears the far end', async () => {
    vi.useFakeTimers();
    try {
      const { peers, striped } = await twoLanesUp();
      // Lane 1 hears nothing for 9 s (its SCTP backing off a retransmission); lane 0 hears keepalives.
      for (let tick = 0; tick < 18; tick++) {
        peers[0]!.receive(LINK_KEEPALIVE_MESSAGE.slice());
        vi.advanceTimersByTime(500);
      }
      expect(striped.closed).toBe(false);
      // Then lane 0 goes quiet too: 3 s of silence on every lane end the link.
      vi.advanceTimersByTime(DEFAULT_LINK_SILENCE_LIMIT_MS + 500);
      expect(striped.closed).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('ends the link when one lane alone stays silent past its own, longer limit', async () => {
    vi.useFakeTimers();
    try {
      const { peers, striped } = await twoLanesUp();
      const saidGoodbye = () => peers[1]!.sent.some((message) => message[0] === LINK_GOODBYE_MESSAGE[0]);
      let heardFor = 0;
      while (!saidGoodbye() && heardFor < 2 * DEFAULT_LANE_SILENCE_LIMIT_MS) {
        peers[0]!.receive(LINK_KEEPALIVE_MESSAGE.slice());
        vi.advanceTimersByTime(500);
        heardFor += 500;
      }
      // Ten silent seconds and up to one period to notice, as a lone link's three; the link then ends with it.
      expect(heardFor).toBeGreaterThanOrEqual(DEFAULT_LANE_SILENCE_LIMIT_MS);
      expect(heardFor).toBeLessThanOrEqual(DEFAULT_LANE_SILENCE_LIMIT_MS + 500);
      vi.advanceTimersByTime(DEFAULT_LINK_GOODBYE_WAIT_MS);
      expect(striped.closed).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('adds a further lane that opened before the first, once the first opens', async () => {
    const { signaling, peers, connector } = lanesSetup(2);
    const link = connector.connect('link-1', false);
    signaling.deliver('link-1', { type: 'offer', sdp: 'o', lanes: 2 });
    peers[1]!.connectNow();
    peers[0]!.connectNow();
    expect(((await link) as StripedLink).laneCount).toBe(2);
  });

  describe('hostile far ends', () => {
    const refusals: [string, unknown[]][] = [
      ['an answer agreeing to more lanes than asked', [{ type: 'answer', sdp: 'a', lanes: 5 }]],
      ['an answer naming a bad count', [{ type: 'answer', sdp: 'a', lanes: 0.5 }]],
      [
        'a signal for a lane never agreed',
        [
          { type: 'answer', sdp: 'a', lanes: 2 },
          { lane: 2, signal: {} },
        ],
      ],
      ['a signal for a lane before any were agreed', [{ lane: 1, signal: {} }]],
      ['a lane number out of range', [{ lane: 99, signal: {} }]],
      [
        'a lane signal without its object',
        [
          { type: 'answer', sdp: 'a', lanes: 2 },
          { lane: 1, signal: 'x' },
        ],
      ],
    ];
    for (const [what, signals] of refusals) {
      it(`gives the link up on ${what}, and tells the broker once`, async () => {
        const { signaling, peers, connector } = lanesSetup(4);
        const outcome = connector.connect('link-1', true).catch((error: { code: string }) => error);
        for (const data of signals) signaling.deliver('link-1', data);
        expect(await outcome).toMatchObject({
          code: 'link-closed',
          message: expect.stringContaining('signal'),
        });
        expect(peers.every((peer) => peer.destroyed)).toBe(true);
        expect(signaling.closedLinks).toEqual(['link-1']);
      });
    }
  });

  /** As responder: the offer arrives, simple-peer answers; resolves with the link once it opens. */
  function signalAndAnswer(setup: ReturnType<typeof lanesSetup>, offer: unknown): Promise<unknown> {
    const link = setup.connector.connect('link-1', false);
    setup.signaling.deliver('link-1', offer);
    setup.peers[0]!.signalOut({ type: 'answer', sdp: 'a' });
    return link;
  }
});
