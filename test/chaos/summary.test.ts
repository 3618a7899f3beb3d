import { describe, expect, it } from 'vitest';
import type { RequestRecord } from '../../bench/chaos/load';
import { differingBytes, navigationErrorCode } from '../../bench/chaos/load';
import {
  failuresByCode,
  leakedConnections,
  spread,
  summarizeFaults,
  type FaultRecord,
} from '../../bench/chaos/summary';

const ok = (startedAt: number, endedAt: number): RequestRecord => ({
  kind: 'page',
  startedAt,
  endedAt,
  ok: true,
  corruptedBytes: 0,
});
const failed = (startedAt: number, endedAt: number, code: string): RequestRecord => ({
  kind: 'download',
  startedAt,
  endedAt,
  ok: false,
  code,
  corruptedBytes: 0,
});

describe('chaos figures', () => {
  it('takes nearest-rank percentiles, every one a measured value', () => {
    expect(spread([])).toBeUndefined();
    expect(spread([7])).toEqual({ p50: 7, p95: 7, max: 7, count: 1 });
    const values = Array.from({ length: 20 }, (_, i) => (20 - i) * 100);
    expect(spread(values)).toEqual({ p50: 1000, p95: 1900, max: 2000, count: 20 });
  });

  it('counts every connection not from an exit as a leak', () => {
    expect(leakedConnections(['127.0.0.3', '127.0.0.4', '127.0.0.3'], ['127.0.0.3', '127.0.0.4'])).toBe(0);
    expect(leakedConnections(['127.0.0.3', '10.231.0.2', '10.231.0.2'], ['127.0.0.3', '127.0.0.4'])).toBe(2);
  });

  it('measures recovery per kind and counts failures inside each fault window only', () => {
    const faults: FaultRecord[] = [
      {
        kind: 'exit_loss',
        at: 1_000,
        target: 'exit',
        restoredAt: 4_000,
        recoveredAt: 2_500,
        settledAt: 4_000,
      },
      {
        kind: 'exit_loss',
        at: 10_000,
        target: 'exit',
        restoredAt: 13_000,
        recoveredAt: 14_000,
        settledAt: 14_000,
      },
      // Not recovered by itself; the user's repair brought it back at 28 s.
      { kind: 'companion_loss', at: 20_000, target: 'companion', userRepair: true, settledAt: 28_000 },
      {
        kind: 'signaling_restart',
        at: 30_000,
        target: 'signaling',
        restoredAt: 32_000,
        recoveredAt: 30_400,
        settledAt: 32_000,
      },
    ];
    const requests = [
      failed(900, 1_200, 'ERR_PROXY_CONNECTION_FAILED'), // ends inside the first exit window
      ok(1_300, 2_500),
      failed(5_000, 5_100, 'fetch-failed'), // between faults: no window
      failed(10_100, 10_200, 'fetch-failed'),
      ok(13_500, 14_000),
      failed(20_100, 20_200, 'ERR_PROXY_CONNECTION_FAILED'), // companion: until the repair
      failed(25_000, 25_100, 'ERR_PROXY_CONNECTION_FAILED'),
      failed(29_000, 29_100, 'ERR_PROXY_CONNECTION_FAILED'), // after the repair, before the next fault: none
      ok(30_000, 30_400),
    ];
    const byKind = Object.fromEntries(summarizeFaults(faults, requests).map((s) => [s.kind, s]));
    expect(byKind['exit_loss']).toEqual({
      kind: 'exit_loss',
      recovery: { p50: 1_500, p95: 4_000, max: 4_000, count: 2 },
      // Recovered before the exit was back (another exit took over): 0; then 1 s after it came back.
      afterRestore: { p50: 0, p95: 1_000, max: 1_000, count: 2 },
      unrecovered: 0,
      failedRequests: 2,
    });
    expect(byKind['companion_loss']).toEqual({ kind: 'companion_loss', unrecovered: 1, failedRequests: 2 });
    expect(byKind['signaling_restart']).toMatchObject({ recovery: { p95: 400 }, failedRequests: 0 });
    expect(byKind['relay_loss']).toEqual({ kind: 'relay_loss', unrecovered: 0, failedRequests: 0 });
    expect(failuresByCode(requests)).toEqual([
      ['ERR_PROXY_CONNECTION_FAILED', 4],
      ['fetch-failed', 2],
    ]);
  });

  it('counts differing bytes at the same offsets, not missing ones', () => {
    expect(differingBytes(Buffer.from('abcdef'), Buffer.from('abcdef'))).toBe(0);
    expect(differingBytes(Buffer.from('abXdeY'), Buffer.from('abcdef'))).toBe(2);
    expect(differingBytes(Buffer.from('abc'), Buffer.from('abcdef'))).toBe(0);
  });

  it("reads Chromium's network error code out of a navigation error", () => {
    expect(navigationErrorCode(new Error('page.goto: net::ERR_PROXY_CONNECTION_FAILED at http://x/'))).toBe(
      'ERR_PROXY_CONNECTION_FAILED',
    );
    const timeout = new Error('Timeout 15000ms exceeded');
    timeout.name = 'TimeoutError';
    expect(navigationErrorCode(timeout)).toBe('timeout');
    expect(navigationErrorCode('something else')).toBe('navigation-failed');
  });
});
