import { describe, expect, it } from 'vitest';
import {
  LaneCopies,
  MAX_RESEND_BYTES,
  resendTarget,
  STALL_ROUND_TRIPS,
  STALL_SLACK_MS,
  UNTIMED_ROUND_TRIP_MS,
  type LaneProgress,
} from '../src/links/lane-resends.js';

const message = (size: number, fill = 1) => new Uint8Array(size).fill(fill);

describe('LaneCopies', () => {
  it('keeps what is in flight, in order, and lets go of what receipts cover', () => {
    const copies = new LaneCopies();
    copies.keep(message(100, 1), 100, 100);
    copies.keep(message(100, 2), 200, 200);
    copies.keep(message(100, 3), 300, 300);
    copies.release(199); // covers only the first message in full
    expect(copies.takeAll().map((m) => m[0])).toEqual([2, 3]);
    expect(copies.takeAll()).toEqual([]);
  });

  it('keeps nothing once what is in flight outgrows the bound, until the lane is idle again', () => {
    const copies = new LaneCopies();
    copies.keep(message(10), 10, 10);
    copies.keep(message(10), MAX_RESEND_BYTES + 20, MAX_RESEND_BYTES + 1);
    expect(copies.complete).toBe(false);
    copies.keep(message(10), MAX_RESEND_BYTES + 30, 10);
    expect(copies.complete).toBe(false);
    expect(copies.takeAll()).toEqual([]);
    copies.restart();
    expect(copies.complete).toBe(true);
    copies.keep(message(10, 7), 10, 10);
    expect(copies.takeAll().map((m) => m[0])).toEqual([7]);
  });
});

describe('resendTarget', () => {
  type Lane = LaneProgress & { name: string };
  const lane = (name: string, fields: Partial<LaneProgress> = {}): Lane => {
    const copies = new LaneCopies();
    copies.keep(message(10), 10, 10);
    return {
      name,
      sent: 1000,
      receipted: 0,
      progressAt: 0,
      shortestRoundTripMs: 100,
      suspended: false,
      ended: false,
      copies,
      ...fields,
    };
  };
  const stalledAt = STALL_ROUND_TRIPS * 100 + STALL_SLACK_MS;

  it('names the lane with the least in flight among those that moved since, once a lane has stalled', () => {
    const stalled = lane('stalled');
    const busy = lane('busy', { progressAt: 50, sent: 5000, receipted: 1000 });
    const lighter = lane('lighter', { progressAt: 60, sent: 3000, receipted: 1000 });
    const lanes = [stalled, busy, lighter];
    expect(resendTarget(stalled, lanes, stalledAt - 1)).toBeUndefined();
    expect(resendTarget(stalled, lanes, stalledAt)?.name).toBe('lighter');
  });

  it('takes an idle lane too, but none while no other lane moved (a slow reader stalls them all)', () => {
    const stalled = lane('stalled', { progressAt: 10 });
    const idle = lane('idle', { progressAt: 0, sent: 500, receipted: 500 });
    const stuckToo = lane('stuck too', { progressAt: 5 });
    expect(resendTarget(stalled, [stalled, idle, stuckToo], 10 + stalledAt)).toBeUndefined();
    const moved = lane('moved', { progressAt: 20, sent: 9000, receipted: 1000 });
    expect(resendTarget(stalled, [stalled, idle, stuckToo, moved], 10 + stalledAt)?.name).toBe('idle');
  });

  it('leaves alone a lane that is idle, suspended, ended, or holds no complete copies', () => {
    const other = lane('other', { progressAt: 100, sent: 0 });
    const incomplete = new LaneCopies();
    incomplete.keep(message(10), MAX_RESEND_BYTES + 10, MAX_RESEND_BYTES + 1);
    for (const fields of [
      { sent: 0 },
      { suspended: true },
      { ended: true },
      { copies: incomplete },
    ] satisfies Partial<LaneProgress>[]) {
      const candidate = lane('candidate', fields);
      expect(resendTarget(candidate, [candidate, other], 10_000)).toBeUndefined();
    }
  });

  it('judges a lane not yet timed by a long round trip', () => {
    const untimed = lane('untimed', { shortestRoundTripMs: undefined });
    const other = lane('other', { progressAt: 1, sent: 0 });
    const stalledAfter = STALL_ROUND_TRIPS * UNTIMED_ROUND_TRIP_MS + STALL_SLACK_MS;
    expect(resendTarget(untimed, [untimed, other], stalledAfter - 1)).toBeUndefined();
    expect(resendTarget(untimed, [untimed, other], stalledAfter)?.name).toBe('other');
  });
});
