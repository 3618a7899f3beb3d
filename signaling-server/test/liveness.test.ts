/** Liveness driven by a ManualClock over fake peers: pings spread over the interval, pongs, idle sweeps. */
import { describe, expect, it } from 'vitest';
import { Liveness, PING_SLICES, type LivePeer } from '../src/liveness.js';
import { ManualClock } from '../../test/manual-clock.js';

class FakePeer implements LivePeer {
  alive = true;
  open = true;
  idleSince: number | undefined = undefined;
  pings = 0;
  dropped: 'unresponsive' | 'idle' | undefined;
  ping(): void {
    this.pings++;
  }
  dropUnresponsive(): void {
    this.dropped = 'unresponsive';
    this.open = false;
  }
  dropIdle(): void {
    this.dropped = 'idle';
  }
}

function setup(peers: FakePeer[], pingIntervalMs = 1_000, idleTimeoutMs = 60_000) {
  const clock = new ManualClock();
  const liveness = new Liveness({ peers: () => peers, pingIntervalMs, idleTimeoutMs, clock });
  liveness.start();
  return { clock, liveness };
}

describe('Liveness', () => {
  it('pings each peer once per interval, and drops one that did not answer the last ping', () => {
    const answering = new FakePeer();
    const deaf = new FakePeer();
    const { clock, liveness } = setup([answering, deaf]);
    // One ping per slice here (two peers, a hundred slices): both within the first two slices.
    clock.advance(2 * (1_000 / PING_SLICES));
    expect([answering.pings, deaf.pings]).toEqual([1, 1]);
    // A round that ended early waits out the rest of its interval.
    clock.advance(1_000 - 2 * (1_000 / PING_SLICES));
    expect([answering.pings, deaf.pings]).toEqual([1, 1]);
    answering.alive = true;
    clock.advance(2 * (1_000 / PING_SLICES));
    expect(answering.pings).toBe(2);
    expect(answering.dropped).toBeUndefined();
    expect(deaf.dropped).toBe('unresponsive');
    liveness.stop();
  });

  it('spreads a round of pings over the interval in slices', () => {
    const peers = Array.from({ length: 2 * PING_SLICES }, () => new FakePeer());
    const { clock, liveness } = setup(peers);
    clock.advance(1_000 / PING_SLICES);
    expect(peers.filter((p) => p.pings === 1)).toHaveLength(2);
    clock.advance(1_000 - 1_000 / PING_SLICES);
    expect(peers.every((p) => p.pings === 1)).toBe(true);
    liveness.stop();
  });

  it('skips peers whose socket is no longer open', () => {
    const gone = new FakePeer();
    gone.open = false;
    gone.alive = false;
    const { clock, liveness } = setup([gone]);
    clock.advance(2_000);
    expect(gone.pings).toBe(0);
    expect(gone.dropped).toBeUndefined();
    liveness.stop();
  });

  it('drops registered peers silent for the idle timeout, and nobody else', () => {
    const quiet = new FakePeer();
    const chatty = new FakePeer();
    const handshaking = new FakePeer();
    const { clock, liveness } = setup([quiet, chatty, handshaking], 3_600_000, 1_000);
    quiet.idleSince = clock.now();
    chatty.idleSince = clock.now();
    clock.advance(750);
    chatty.idleSince = clock.now();
    clock.advance(500);
    expect(quiet.dropped).toBe('idle');
    expect(chatty.dropped).toBeUndefined();
    expect(handshaking.dropped).toBeUndefined();
    liveness.stop();
  });

  it('does nothing after stop', () => {
    const deaf = new FakePeer();
    deaf.idleSince = 0;
    const { clock, liveness } = setup([deaf], 1_000, 1_000);
    liveness.stop();
    clock.advance(10_000);
    expect(deaf.pings).toBe(0);
    expect(deaf.dropped).toBeUndefined();
  });
});
