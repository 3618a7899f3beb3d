import { describe, expect, it } from 'vitest';
import { describeDestination, RefusalLog, refusalReasonOf } from '../src/engines/refusal-log.js';

describe('RefusalLog', () => {
  it('counts refusals by reason and keeps the latest few, newest first', () => {
    let now = 1_000;
    const log = new RefusalLog({ clock: { now: () => now }, keep: 3 });
    const reasons = ['policy-denied', 'dns-failed', 'policy-denied', 'no-path', 'refused'] as const;
    reasons.forEach((reason, i) => {
      now += 10;
      log.record({ kind: 'tcp', host: `host${i}.test`, port: 80 + i }, reason);
    });
    expect(log.summary()).toEqual({
      total: 5,
      byReason: { 'policy-denied': 2, 'dns-failed': 1, 'no-path': 1, refused: 1 },
      recent: [
        { destination: 'host4.test:84', reason: 'refused', at: 1_050 },
        { destination: 'host3.test:83', reason: 'no-path', at: 1_040 },
        { destination: 'host2.test:82', reason: 'policy-denied', at: 1_030 },
      ],
    });
    log.clear();
    expect(log.summary()).toEqual({ total: 0, byReason: {}, recent: [] });
  });

  it('holds bounded memory however many refusals come', () => {
    const log = new RefusalLog({ clock: { now: () => 0 } });
    for (let i = 0; i < 10_000; i++) log.record({ kind: 'tcp', host: 'a.test', port: 1 }, 'timeout');
    const summary = log.summary();
    expect(summary.total).toBe(10_000);
    expect(summary.recent).toHaveLength(5);
    expect(summary.byReason).toEqual({ timeout: 10_000 });
  });

  it('cuts a hostile destination to a safe length and characters, keeping the port', () => {
    const long = describeDestination({ kind: 'tcp', host: 'a'.repeat(100_000), port: 8080 }, 40);
    expect(long).toHaveLength(40);
    expect(long.endsWith('…:8080')).toBe(true);
    expect(describeDestination({ kind: 'tcp', host: 'evil\u202e<b>.test', port: 1 }, 80)).toBe(
      'evil??b?.test:1',
    );
    expect(describeDestination({ kind: 'tcp', host: '::1', port: 443 }, 80)).toBe('[::1]:443');
    expect(
      describeDestination({ kind: 'torrent', infoHash: 'ab'.repeat(20), trackers: [], files: [] }, 80),
    ).toBe(`torrent ${'ab'.repeat(20)}`);
  });

  it('files a code it does not know under unreachable', () => {
    expect(refusalReasonOf('policy-denied')).toBe('policy-denied');
    expect(refusalReasonOf('something-new')).toBe('unreachable');
  });
});
