import { describe, expect, it } from 'vitest';
import { downloadsRoute, sharedPathOf } from '../features/downloads/downloads-route';
import type { ProtectEngineState } from '../features/protect/protect-messages';
import { PROTECTED_TWO_HOP } from './protected-state';

const STATUSES: ProtectEngineState['status'][] = ['off', 'connecting', 'reconnecting', 'protected', 'error'];

describe('downloadsRoute', () => {
  it("keeps Downloads on their own path where the platform's policy spares our links (Chrome)", () => {
    for (const protect of STATUSES) expect(downloadsRoute({ sharesProtectPath: false, protect })).toBe('own');
  });

  it("rides Protect's path in Firefox from the moment Protect runs until it is off or failed", () => {
    const routes = STATUSES.map((protect) => [protect, downloadsRoute({ sharesProtectPath: true, protect })]);
    expect(Object.fromEntries(routes)).toEqual({
      off: 'own',
      connecting: 'protect',
      // A rebuild (failover, "New path") keeps them there: they wait for Protect's next path, not a link of theirs.
      reconnecting: 'protect',
      protected: 'protect',
      error: 'own',
    });
  });
});

describe('sharedPathOf', () => {
  it("is ready only once Protect's path is up and its exit's torrent session is open", () => {
    expect(sharedPathOf(PROTECTED_TWO_HOP, { status: 'ready' })).toEqual({
      status: 'ready',
      exitPeerId: 'e'.repeat(22),
      sharesProtect: true,
    });
    expect(sharedPathOf(PROTECTED_TWO_HOP, { status: 'opening' })).toEqual({ status: 'connecting' });
    expect(sharedPathOf(PROTECTED_TWO_HOP, { status: 'none' })).toEqual({ status: 'connecting' });
    expect(sharedPathOf({ status: 'connecting' }, { status: 'none' })).toEqual({ status: 'connecting' });
  });

  it("says when Protect's exit serves no torrents, and when Protect rebuilds its path", () => {
    expect(sharedPathOf(PROTECTED_TWO_HOP, { status: 'lacking', reason: 'no torrents here' })).toMatchObject({
      status: 'failed',
      code: 'no-torrent-exit',
    });
    expect(
      sharedPathOf(
        { status: 'reconnecting', reason: 'the first hop closed', attempt: 1 },
        { status: 'none' },
      ),
    ).toEqual({ status: 'reconnecting', reason: 'the first hop closed' });
    expect(
      sharedPathOf(
        { status: 'error', code: 'no-exit-available', reason: 'x'.repeat(5_000) },
        { status: 'none' },
      ),
    ).toMatchObject({ status: 'failed', code: 'downloads-failed' });
  });
});
