import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ExitPolicy } from '@underpass/shared/exit';
import { TorrentPolicy, type PolicyLayer } from '../src/torrent/index.js';

/** The exit's address policy as the torrent service applies it (pure checks; the integration tests dial). */

function policy(
  allowDestinations: string[] = [],
  lookup?: (host: string) => Promise<{ address: string; family: number }[]>,
) {
  const denied: PolicyLayer[] = [];
  const torrentPolicy = new TorrentPolicy({
    policy: new ExitPolicy({ allowDestinations }),
    bindAddress: '198.51.100.7',
    ownAddresses: ['2001:db8::7'],
    ...(lookup ? { lookup } : {}),
    onDenied: (layer) => denied.push(layer),
  });
  return { torrentPolicy, denied };
}

describe('TorrentPolicy', () => {
  it('refuses what the exit policy refuses, names, and the exit’s own addresses however spelled', () => {
    const { torrentPolicy } = policy(['198.51.100.0/24', '2001:db8::/32']);
    for (const address of [
      '10.0.0.1',
      '127.0.0.1',
      '169.254.169.254',
      '100.64.0.1',
      '224.0.0.1',
      '0.0.0.0',
      '::1',
      'fe80::1',
      '::ffff:192.168.1.1',
    ]) {
      expect(torrentPolicy.check(address).allowed, address).toBe(false);
    }
    expect(torrentPolicy.check('tracker.example.org').allowed).toBe(false);
    // The operator's range includes the exit's own addresses: they stay refused.
    for (const own of [
      '198.51.100.7',
      '::ffff:198.51.100.7',
      '2001:db8::7',
      '2001:db8:0:0:0:0:0:7',
      '[2001:db8::7]',
    ]) {
      expect(torrentPolicy.check(own), own).toEqual({ allowed: false, reason: "the exit's own address" });
    }
    for (const entry of Object.values(networkInterfaces()).flat()) {
      if (entry) expect(torrentPolicy.check(entry.address).allowed, entry.address).toBe(false);
    }
    expect(torrentPolicy.check('198.51.100.8').allowed).toBe(true);
    expect(torrentPolicy.check('203.0.113.9', 51413).allowed).toBe(true);
  });

  it('applies the torrent port rule, not the tcp streams’ (6881-6999 allowed, well-known ports and 25 refused)', () => {
    const { torrentPolicy } = policy();
    expect(torrentPolicy.check('203.0.113.9', 6881).allowed).toBe(true);
    expect(torrentPolicy.check('203.0.113.9', 80).allowed).toBe(true);
    expect(torrentPolicy.check('203.0.113.9', 443).allowed).toBe(true);
    for (const port of [22, 25, 53, 445, 0, 70000])
      expect(torrentPolicy.check('203.0.113.9', port).allowed, String(port)).toBe(false);
  });

  it('keeps http(s) trackers, rewrites udp ones to their checked address, drops the rest', async () => {
    const { torrentPolicy, denied } = policy([], async (host) =>
      host === 'tracker.example.org'
        ? [{ address: '203.0.113.5', family: 4 }]
        : [{ address: '127.0.0.1', family: 4 }],
    );
    const { kept, dropped } = await torrentPolicy.filterTrackers(
      [
        'http://tracker.example.org/announce',
        'https://tracker.example.org/announce',
        'udp://tracker.example.org:6969/announce',
        'udp://localhost:6969',
        'udp://10.0.0.1:6969',
        'wss://tracker.example.org',
        'not a url',
      ],
      { http: true, udp: true },
    );
    expect(kept).toEqual([
      'http://tracker.example.org/announce',
      'https://tracker.example.org/announce',
      'udp://203.0.113.5:6969/announce',
    ]);
    expect(dropped).toEqual([
      'udp://localhost:6969',
      'udp://10.0.0.1:6969',
      'wss://tracker.example.org',
      'not a url',
    ]);
    expect(denied).toEqual(['udp-tracker', 'udp-tracker', 'tracker-url', 'tracker-url']);
  });
});
