import { describe, expect, it } from 'vitest';
import { RefusedDestinations } from '../src/engines/refused-destinations.js';
import type { StreamRequest } from '../src/tunnel/mux-frames.js';

const tcp = (host: string, port = 443): StreamRequest => ({ kind: 'tcp', host, port });

function withClock(options: { keep?: number; memoryMs?: number } = {}) {
  const clock = { time: 0, now: () => clock.time };
  return { clock, refused: new RefusedDestinations({ clock, ...options }) };
}

describe('RefusedDestinations', () => {
  it('remembers what the exit refused for the destination’s sake, by host (any case) and port', () => {
    const { refused } = withClock();
    for (const [host, code] of [
      ['typo.example', 'dns-failed'],
      ['10.0.0.1', 'policy-denied'],
      ['closed.example', 'refused'],
      ['silent.example', 'timeout'],
      ['far.example', 'unreachable'],
    ] as const)
      refused.note(tcp(host), code);
    expect(refused.has(tcp('TYPO.example'))).toBe(true);
    expect(refused.has(tcp('typo.example', 80))).toBe(false);
    for (const host of ['10.0.0.1', 'closed.example', 'silent.example', 'far.example'])
      expect(refused.has(tcp(host))).toBe(true);
  });

  it('ignores failures that are not the destination’s: the path, the session, this side', () => {
    const { refused } = withClock();
    for (const code of ['session-closed', 'reset', 'limit', 'protocol', 'no-path', 'link-closed'])
      refused.note(tcp('example.org'), code);
    expect(refused.has(tcp('example.org'))).toBe(false);
    refused.note({ kind: 'torrent', infoHash: 'a'.repeat(40), trackers: [], files: [] }, 'dns-failed');
    expect(refused.has({ kind: 'torrent', infoHash: 'a'.repeat(40), trackers: [], files: [] })).toBe(false);
  });

  it('forgets a refusal after its memory, and counts it again from a new refusal', () => {
    const { clock, refused } = withClock({ memoryMs: 1_000 });
    refused.note(tcp('typo.example'), 'dns-failed');
    clock.time = 999;
    expect(refused.has(tcp('typo.example'))).toBe(true);
    clock.time = 1_000;
    expect(refused.has(tcp('typo.example'))).toBe(false);
    refused.note(tcp('typo.example'), 'dns-failed');
    clock.time = 1_500;
    expect(refused.has(tcp('typo.example'))).toBe(true);
  });

  it('keeps at most `keep` destinations, the oldest refused giving way', () => {
    const { refused } = withClock({ keep: 2 });
    refused.note(tcp('a.example'), 'refused');
    refused.note(tcp('b.example'), 'refused');
    refused.note(tcp('a.example'), 'refused'); // refused again: now the newest
    refused.note(tcp('c.example'), 'refused');
    expect(refused.has(tcp('a.example'))).toBe(true);
    expect(refused.has(tcp('b.example'))).toBe(false);
    expect(refused.has(tcp('c.example'))).toBe(true);
    refused.clear();
    expect(refused.has(tcp('a.example'))).toBe(false);
  });
});
