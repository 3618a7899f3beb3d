import { describe, expect, it } from 'vitest';
import type { DownloadsPath } from '../features/downloads/downloads-messages';
import { protectHoldsDownloads } from '../features/downloads/protect-hold';
import type { SwitchState } from '../lib/messages';

const failed: DownloadsPath = {
  status: 'failed',
  code: 'downloads-failed',
  reason: 'the peer closed before connecting',
};
const ready: DownloadsPath = { status: 'ready', exitPeerId: 'exit' };

describe('whether Protect holds Downloads’ path (Firefox)', () => {
  it('holds it in Firefox while Protect is on and the path is not up', () => {
    const on: SwitchState = { status: 'on' };
    for (const path of [
      failed,
      { status: 'connecting' } as const,
      { status: 'reconnecting', reason: 'lost' } as const,
    ])
      expect(protectHoldsDownloads({ firefox: true, protect: on, path })).toBe(true);
  });

  it('not once the path is up, not while Protect builds a path (its looser policy lets links connect), not in Chrome', () => {
    expect(protectHoldsDownloads({ firefox: true, protect: { status: 'on' }, path: ready })).toBe(false);
    const others: SwitchState[] = [
      { status: 'off' },
      { status: 'connecting' },
      { status: 'reconnecting' },
      { status: 'error', code: 'companion-missing', reason: 'no companion' },
    ];
    for (const protect of others)
      expect(protectHoldsDownloads({ firefox: true, protect, path: failed })).toBe(false);
    expect(protectHoldsDownloads({ firefox: false, protect: { status: 'on' }, path: failed })).toBe(false);
  });
});
