import { describe, expect, it } from 'vitest';
import { readMagnet } from '../src/torrent/magnet.js';

const HASH = 'c9e15763f722f23e98a29decdfae341b98d53056';

describe('readMagnet', () => {
  it('keeps the infohash, name and trackers, and gives the user only what it cannot contact', () => {
    const checked = readMagnet(
      `magnet:?xt=urn:btih:${HASH.toUpperCase()}&dn=Cosmos+Laundromat` +
        '&tr=udp%3A%2F%2Ftracker.example.org%3A6969&tr=wss%3A%2F%2Ftracker.example.net' +
        '&xs=https%3A%2F%2Fexample.com%2Ff.torrent&ws=https%3A%2F%2Fseed.example%2F&as=https%3A%2F%2Fa.example%2F' +
        '&x.pe=10.0.0.1:6881',
    );
    expect(checked).toMatchObject({
      ok: true,
      magnet: {
        infoHash: HASH,
        name: 'Cosmos Laundromat',
        trackers: ['udp://tracker.example.org:6969', 'wss://tracker.example.net'],
        droppedTrackers: 0,
      },
    });
    if (!checked.ok) return;
    const user = checked.magnet.userMagnet;
    expect(user).toContain(`xt=urn:btih:${HASH}`);
    for (const leak of ['tr=', 'xs=', 'ws=', 'as=', 'x.pe', 'example.com', 'seed.example', '10.0.0.1'])
      expect(user).not.toContain(leak);
  });

  it('reads a base32 infohash', () => {
    const checked = readMagnet('magnet:?xt=urn:btih:ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMCW');
    expect(checked).toMatchObject({ ok: true, magnet: { infoHash: HASH, trackers: [] } });
  });

  it('drops trackers a request cannot carry, and keeps at most 32', () => {
    const many = Array.from(
      { length: 40 },
      (_, i) => `&tr=${encodeURIComponent(`http://t${i}.example/announce`)}`,
    );
    const checked = readMagnet(
      `magnet:?xt=urn:btih:${HASH}&tr=${encodeURIComponent('file:///etc/passwd')}&tr=not%20a%20url${many.join('')}`,
    );
    expect(checked.ok && checked.magnet.trackers).toHaveLength(32);
    expect(checked.ok && checked.magnet.droppedTrackers).toBe(10);
  });

  it('refuses what is not a BitTorrent magnet, with a reason', () => {
    expect(readMagnet('https://example.com/x.torrent')).toMatchObject({ ok: false, problem: 'not-a-magnet' });
    expect(readMagnet('magnet:?dn=nothing')).toMatchObject({ ok: false, problem: 'no-infohash' });
    expect(readMagnet(`magnet:?xt=urn:btih:${'z'.repeat(40)}`)).toMatchObject({
      ok: false,
      problem: 'no-infohash',
    });
    expect(readMagnet(`magnet:?xt=urn:btih:${HASH}&dn=${'a'.repeat(20_000)}`)).toMatchObject({
      ok: false,
      problem: 'too-long',
    });
  });
});
