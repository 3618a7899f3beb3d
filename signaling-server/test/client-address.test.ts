import { describe, expect, it } from 'vitest';
import { TrustedProxies } from '../src/client-address.js';

const proxies = TrustedProxies.parse(['10.0.0.0/8', '127.0.0.1', '2001:db8:ffff::/48']);

describe('TrustedProxies.clientAddress', () => {
  const cases: [string, string, Record<string, string>, string][] = [
    ['no header from a trusted proxy: the proxy', '10.0.0.1', {}, '10.0.0.1'],
    [
      'an untrusted peer: its own address, whatever it writes',
      '198.51.100.9',
      { 'x-forwarded-for': '1.2.3.4' },
      '198.51.100.9',
    ],
    ['one hop', '10.0.0.1', { 'x-forwarded-for': '203.0.113.5' }, '203.0.113.5'],
    [
      'two proxies: the first address that is not one, from the right',
      '10.0.0.1',
      { 'x-forwarded-for': '203.0.113.5, 10.1.2.3' },
      '203.0.113.5',
    ],
    [
      'a client that forges the left of the chain gets its real address',
      '10.0.0.1',
      { 'x-forwarded-for': '6.6.6.6, 203.0.113.5' },
      '203.0.113.5',
    ],
    [
      'a mapped socket address of a trusted proxy',
      '::ffff:127.0.0.1',
      { 'x-forwarded-for': '203.0.113.5' },
      '203.0.113.5',
    ],
    [
      'an IPv6 client, one spelling',
      '10.0.0.1',
      { 'x-forwarded-for': '2001:DB8:0:0:0:0:0:1' },
      '2001:db8::1',
    ],
    [
      'a mapped client is its IPv4 address',
      '10.0.0.1',
      { 'x-forwarded-for': '::ffff:203.0.113.5' },
      '203.0.113.5',
    ],
    [
      'garbage before an untrusted address: the proxy',
      '10.0.0.1',
      { 'x-forwarded-for': 'unknown' },
      '10.0.0.1',
    ],
    ['an empty entry: the proxy', '10.0.0.1', { 'x-forwarded-for': '203.0.113.5,' }, '10.0.0.1'],
    [
      'only trusted proxies in the chain: the proxy',
      '10.0.0.1',
      { 'x-forwarded-for': '10.9.9.9' },
      '10.0.0.1',
    ],
    [
      'Forwarded, quoted IPv6 with a port',
      '10.0.0.1',
      { forwarded: 'for="[2001:db8:cafe::17]:4711"' },
      '2001:db8:cafe::17',
    ],
    [
      'Forwarded, with other parameters and two elements',
      '10.0.0.1',
      { forwarded: 'for=192.0.2.43, for=198.51.100.17;proto=https;by=10.0.0.1' },
      '198.51.100.17',
    ],
    [
      'Forwarded wins over X-Forwarded-For',
      '10.0.0.1',
      { forwarded: 'for=192.0.2.43', 'x-forwarded-for': '203.0.113.5' },
      '192.0.2.43',
    ],
    ['Forwarded without for=: the proxy', '10.0.0.1', { forwarded: 'proto=https' }, '10.0.0.1'],
    ['Forwarded, an obfuscated node: the proxy', '10.0.0.1', { forwarded: 'for=_hidden' }, '10.0.0.1'],
    ['an IPv4 address with a port', '10.0.0.1', { forwarded: 'for="192.0.2.43:8080"' }, '192.0.2.43'],
  ];
  for (const [name, peer, headers, expected] of cases) {
    it(name, () => {
      expect(proxies.clientAddress(peer, headers)).toBe(expected);
    });
  }

  it('reads at most 32 hops from the right, and then counts the connection as the proxy’s', () => {
    const chain = ['203.0.113.5', ...Array.from({ length: 40 }, () => '10.0.0.2')].join(', ');
    expect(proxies.clientAddress('10.0.0.1', { 'x-forwarded-for': chain })).toBe('10.0.0.1');
  });

  it('with no trusted proxy reads no header', () => {
    expect(TrustedProxies.none.clientAddress('127.0.0.1', { 'x-forwarded-for': '203.0.113.5' })).toBe(
      '127.0.0.1',
    );
  });

  it('refuses an entry that is not an address or range, naming it', () => {
    expect(() => TrustedProxies.parse(['10.0.0.0/8', 'proxy.example'])).toThrow(/proxy\.example/);
    expect(() => TrustedProxies.parse(['10.0.0.0/33'])).toThrow(RangeError);
  });
});
