import { describe, expect, it } from 'vitest';
import { ALWAYS_DENIED_PORTS, DENIED_RANGES, ExitPolicy } from '../src/exit/exit-policy.js';
import { embeddedIPv4, formatIPv4, parseIp } from '../src/exit/ip.js';

/** For every default-denied range: its first, a middle and its last address. */
const DENIED_SAMPLES: Record<string, string[]> = {
  '0.0.0.0/8': ['0.0.0.0', '0.1.2.3', '0.255.255.255'],
  '10.0.0.0/8': ['10.0.0.0', '10.20.30.40', '10.255.255.255'],
  '100.64.0.0/10': ['100.64.0.0', '100.100.100.100', '100.127.255.255'],
  '127.0.0.0/8': ['127.0.0.0', '127.0.0.1', '127.255.255.255'],
  '169.254.0.0/16': ['169.254.0.0', '169.254.169.254', '169.254.255.255'],
  '172.16.0.0/12': ['172.16.0.0', '172.20.1.1', '172.31.255.255'],
  '192.0.0.0/24': ['192.0.0.0', '192.0.0.170', '192.0.0.255'],
  '192.168.0.0/16': ['192.168.0.0', '192.168.1.1', '192.168.255.255'],
  '198.18.0.0/15': ['198.18.0.0', '198.18.200.1', '198.19.255.255'],
  '224.0.0.0/4': ['224.0.0.0', '239.255.255.250', '239.255.255.255'],
  '240.0.0.0/4': ['240.0.0.0', '250.1.2.3', '255.255.255.255'],
  '::/128': ['::', '0:0:0:0:0:0:0:0'],
  '::1/128': ['::1', '0:0:0:0:0:0:0:1'],
  // The forms that embed IPv4, sampled with public embedded addresses: the range itself denies them.
  '::/96': ['::8.8.8.8', '::101:101', '::1.2.3.4'],
  '::ffff:0:0:0/96': ['::ffff:0:8.8.8.8', '::ffff:0:101:101'],
  '64:ff9b::/96': ['64:ff9b::808:808', '64:ff9b::1.1.1.1', '64:ff9b::5db8:d822'],
  '64:ff9b:1::/48': ['64:ff9b:1:808:808:808:808:808', '64:ff9b:1:101:101:101:101:101'],
  '2001::/32': ['2001:0:808:808::f7f7:f7f7', '2001:0:101:101:8000:0:fefe:fefe'],
  '2002::/16': ['2002:808:808::', '2002:101:101:ffff::1'],
  'fc00::/7': ['fc00::', 'fd12:3456:789a::1', 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  'fe80::/10': ['fe80::', 'fe80::1%eth0', 'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  'ff00::/8': ['ff00::', 'ff02::1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
};

/** Public neighbours just outside the IPv4 ranges above: the deny list must not spill over. */
const ALLOWED_NEIGHBOURS = [
  '1.0.0.0',
  '9.255.255.255',
  '11.0.0.0',
  '100.63.255.255',
  '100.128.0.0',
  '126.255.255.255',
  '128.0.0.0',
  '169.253.255.255',
  '169.255.0.0',
  '172.15.255.255',
  '172.32.0.0',
  '191.255.255.255',
  '192.0.1.0',
  '192.167.255.255',
  '192.169.0.0',
  '198.17.255.255',
  '198.20.0.0',
  '223.255.255.255',
];

describe('ExitPolicy default deny', () => {
  const policy = new ExitPolicy();

  it('has a sample for every denied range (and no stale samples)', () => {
    expect(Object.keys(DENIED_SAMPLES).sort()).toEqual(DENIED_RANGES.map(({ cidr }) => cidr.text).sort());
  });

  for (const { cidr, why } of DENIED_RANGES) {
    it(`denies ${cidr.text} (${why})`, () => {
      for (const address of DENIED_SAMPLES[cidr.text] ?? []) {
        const decision = policy.checkAddress(address);
        expect(decision, address).toEqual({ allowed: false, reason: expect.stringContaining(cidr.text) });
      }
    });
  }

  it.each([
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::FFFF:7F00:0001',
    '::ffff:10.0.0.1',
    '::ffff:a00:1',
    '::ffff:169.254.169.254',
    '::ffff:192.168.1.1',
    '::ffff:0.0.0.0',
    '0:0:0:0:0:ffff:100.64.0.1',
    '::ffff:224.0.0.1',
  ])('denies the IPv4-mapped address %s like the IPv4 one', (address) => {
    expect(policy.checkAddress(address).allowed).toBe(false);
  });

  it.each([
    '93.184.216.34',
    '8.8.8.8',
    '1.1.1.1',
    '2606:2800:220:1::1',
    '2001:4860:4860::8888',
    '::ffff:93.184.216.34',
  ])('allows the public address %s', (address) => {
    expect(policy.checkAddress(address)).toEqual({ allowed: true });
  });

  it.each(ALLOWED_NEIGHBOURS)('allows %s, just outside a denied range', (address) => {
    expect(policy.checkAddress(address)).toEqual({ allowed: true });
  });

  it.each([
    'localhost',
    'example.com',
    '',
    ' ',
    '127.1',
    '2130706433',
    '0x7f000001',
    '0177.0.0.1',
    '127.0.0.1 ',
    ' 93.184.216.34',
    '93.184.216.34.',
    '93.184.216.34:80',
    '[2606:2800:220:1::1]:443',
    'http://93.184.216.34/',
    '256.1.1.1',
  ])('denies %j, which is not an IP address', (text) => {
    expect(policy.checkAddress(text)).toEqual({ allowed: false, reason: 'not an IP address' });
  });

  // Bug (see report: "ip.ts: embedded IPv4 accepted before '::'"): these strings parse as IPv6 addresses
  // that no range covers, so the policy allows them. Unreachable through TcpDialer today (Node's isIP says
  // no, so they go to DNS), but the policy must not depend on that.
  it.each(['127.0.0.1::', '10.0.0.1::1'])('denies %j, which is not an IP address (parser bug)', (text) => {
    expect(policy.checkAddress(text).allowed).toBe(false);
  });
});

describe('ExitPolicy ports', () => {
  it('denies SMTP always, even with an allow-list', () => {
    expect(ALWAYS_DENIED_PORTS).toContain(25);
    for (const policy of [
      new ExitPolicy(),
      new ExitPolicy({ allowDestinations: ['0.0.0.0/0', '::/0'] }),
      new ExitPolicy({ allowDestinations: ['127.0.0.1/32'] }),
    ]) {
      expect(policy.checkPort(25)).toEqual({ allowed: false, reason: 'port 25 is never allowed' });
    }
  });

  it.each([0, -1, 65536, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('denies the bad port %s', (port) => {
    expect(new ExitPolicy().checkPort(port)).toEqual({ allowed: false, reason: 'bad port' });
  });

  it.each([1, 24, 26, 80, 443, 587, 65535])('allows port %s', (port) => {
    expect(new ExitPolicy().checkPort(port)).toEqual({ allowed: true });
  });
});

describe('ExitPolicy allowDestinations', () => {
  it('opens exactly the given IPv4 host and nothing next to it', () => {
    const policy = new ExitPolicy({ allowDestinations: ['127.0.0.1/32'] });
    expect(policy.checkAddress('127.0.0.1')).toEqual({ allowed: true });
    expect(policy.checkAddress('::ffff:127.0.0.1')).toEqual({ allowed: true });
    for (const address of ['127.0.0.0', '127.0.0.2', '127.0.1.1', '127.255.255.255', '10.0.0.1', '::1']) {
      expect(policy.checkAddress(address).allowed, address).toBe(false);
    }
  });

  it('opens exactly the given IPv4 range and nothing next to it', () => {
    const policy = new ExitPolicy({ allowDestinations: ['10.1.2.0/24'] });
    expect(policy.checkAddress('10.1.2.0').allowed).toBe(true);
    expect(policy.checkAddress('10.1.2.255').allowed).toBe(true);
    expect(policy.checkAddress('10.1.1.255').allowed).toBe(false);
    expect(policy.checkAddress('10.1.3.0').allowed).toBe(false);
  });

  it('opens exactly the given IPv6 range and nothing next to it', () => {
    const policy = new ExitPolicy({ allowDestinations: ['fd00:1::/64', '::1/128'] });
    expect(policy.checkAddress('fd00:1::1').allowed).toBe(true);
    expect(policy.checkAddress('fd00:1::ffff:ffff:ffff:ffff').allowed).toBe(true);
    expect(policy.checkAddress('fd00:1:0:1::').allowed).toBe(false);
    expect(policy.checkAddress('fd00:0:ffff:ffff:ffff:ffff:ffff:ffff').allowed).toBe(false);
    expect(policy.checkAddress('::1').allowed).toBe(true);
    expect(policy.checkAddress('::').allowed).toBe(false);
  });

  it('a mapped IPv6 allow entry matches the mapped form only; the IPv4 form stays denied', () => {
    const policy = new ExitPolicy({ allowDestinations: ['::ffff:192.168.1.0/120'] });
    expect(policy.checkAddress('::ffff:192.168.1.7').allowed).toBe(true);
    // Asymmetric with an IPv4 entry, which also allows its mapped form (see report, minor).
    expect(policy.checkAddress('192.168.1.7').allowed).toBe(false);
  });

  it('still allows public addresses and names the allowed ranges in its summary', () => {
    const policy = new ExitPolicy({ allowDestinations: ['127.0.0.1/32'] });
    expect(policy.checkAddress('93.184.216.34')).toEqual({ allowed: true });
    expect(policy.summary()).toContain('127.0.0.1/32');
    expect(policy.summary()).toContain('except 25');
    expect(new ExitPolicy().summary()).not.toContain('operator allows');
  });

  it.each(['127.0.0.1/33', 'localhost', '', '127.0.0.1/8/8', '::1/129', '10.0.0.0/08', 'fe80::/ten'])(
    'throws on the bad CIDR %j',
    (text) => {
      expect(() => new ExitPolicy({ allowDestinations: [text] })).toThrow(/not a CIDR/);
    },
  );

  // Bug (see report: "ip.ts: Cidr.parse prefix is read with Number()"): a trailing slash is read as /0 and
  // silently allows every IPv4 address, loopback and cloud metadata included.
  it('throws on a CIDR with an empty prefix instead of allowing everything', () => {
    expect(() => new ExitPolicy({ allowDestinations: ['127.0.0.1/'] })).toThrow(/not a CIDR/);
  });
});

describe("ExitPolicy: the exit host's own addresses", () => {
  const own = ['203.0.113.7', '2001:db8::7', 'fe80::1%eth0'];
  const ownPolicy = (allowDestinations: string[] = [], list: () => readonly string[] = () => own) =>
    new ExitPolicy({ allowDestinations, ownAddresses: list });

  it.each([
    '203.0.113.7',
    '::ffff:203.0.113.7',
    '::ffff:cb00:7107',
    '2001:db8::7',
    '2001:DB8:0::7',
    'fe80::1',
  ])('denies %s, an address of the exit itself however spelled', (address) => {
    expect(ownPolicy().checkAddress(address)).toEqual({ allowed: false, reason: "the exit's own address" });
  });

  it('allows its neighbours', () => {
    expect(ownPolicy().checkAddress('203.0.113.8')).toEqual({ allowed: true });
    expect(ownPolicy().checkAddress('2001:db8::8')).toEqual({ allowed: true });
  });

  it("an operator's range that contains one does not re-open it; the exact address does", () => {
    const ranged = ownPolicy(['203.0.113.0/24', '2001:db8::/32']);
    expect(ranged.checkAddress('203.0.113.7').allowed).toBe(false);
    expect(ranged.checkAddress('2001:db8::7').allowed).toBe(false);
    expect(ranged.checkAddress('203.0.113.9').allowed).toBe(true);
    const exact = ownPolicy(['203.0.113.7/32', '2001:db8::7/128']);
    expect(exact.checkAddress('203.0.113.7')).toEqual({ allowed: true });
    expect(exact.checkAddress('2001:db8::7')).toEqual({ allowed: true });
  });

  it('follows the list as it changes, and parses it again only when it does', () => {
    let list: readonly string[] = ['198.51.100.1'];
    let asked = 0;
    const policy = ownPolicy([], () => {
      asked += 1;
      return list;
    });
    expect(policy.checkAddress('198.51.100.1').allowed).toBe(false);
    expect(policy.checkAddress('198.51.100.2').allowed).toBe(true);
    list = ['198.51.100.2'];
    expect(policy.checkAddress('198.51.100.1').allowed).toBe(true);
    expect(policy.checkAddress('198.51.100.2').allowed).toBe(false);
    expect(asked).toBe(4);
  });
});

/** The probe's forms (issue 12): IPv6 addresses that carry a forbidden IPv4 one, and what it carries. */
const EMBEDDING: [form: string, address: string, embeds: string][] = [
  ['IPv4-compatible', '::127.0.0.1', '127.0.0.1'],
  ['IPv4-compatible', '::a00:1', '10.0.0.1'],
  ['SIIT', '::ffff:0:127.0.0.1', '127.0.0.1'],
  ['SIIT', '::ffff:0:a9fe:a9fe', '169.254.169.254'],
  ['well-known NAT64', '64:ff9b::10.0.0.1', '10.0.0.1'],
  ['well-known NAT64', '64:ff9b::7f00:1', '127.0.0.1'],
  ['local-use NAT64 /96', '64:ff9b:1::10.0.0.1', '10.0.0.1'],
  ['local-use NAT64 /48', '64:ff9b:1:c0a8:1:100::', '192.168.1.1'],
  ['local-use NAT64 /64', '64:ff9b:1:0:7f:0:100::', '127.0.0.1'],
  ['6to4', '2002:7f00:1::', '127.0.0.1'],
  ['6to4', '2002:a00:1:1::1', '10.0.0.1'],
  ['Teredo server', '2001:0:7f00:1::1', '127.0.0.1'],
  ['Teredo client (inverted)', '2001:0:808:808::f5ff:fffe', '10.0.0.1'],
  ['Teredo client (inverted)', '2001:0:808:808:8000:0:80ff:fffe', '127.0.0.1'],
];

/** Every range of these forms, allowed by an operator (an IPv6-only host behind NAT64, say). */
const EMBEDDING_RANGES = [
  '::/96',
  '::ffff:0:0:0/96',
  '64:ff9b::/96',
  '64:ff9b:1::/48',
  '2001::/32',
  '2002::/16',
];

describe('ExitPolicy: IPv6 forms that embed an IPv4 address', () => {
  it.each(EMBEDDING)('denies %s %s (carries %s) by default', (_form, address) => {
    expect(new ExitPolicy().checkAddress(address).allowed).toBe(false);
  });

  it.each(EMBEDDING)(
    'denies %s %s even where the operator allowed the IPv6 range: it carries %s',
    (_form, address, embeds) => {
      expect(embeddedIPv4(parseIp(address)!).map(formatIPv4)).toContain(embeds);
      const decision = new ExitPolicy({ allowDestinations: EMBEDDING_RANGES }).checkAddress(address);
      // Local-use NAT64 is read in every RFC 6052 layout, so the first denied reading may be another one.
      expect(decision).toEqual({ allowed: false, reason: expect.stringMatching(/^embeds [0-9.]+: /) });
    },
  );

  it('denies one that carries an address of the exit itself', () => {
    const policy = new ExitPolicy({
      allowDestinations: EMBEDDING_RANGES,
      ownAddresses: () => ['203.0.113.7'],
    });
    expect(policy.checkAddress('64:ff9b::203.0.113.7')).toEqual({
      allowed: false,
      reason: "embeds 203.0.113.7: the exit's own address",
    });
    expect(policy.checkAddress('2002:cb00:7107::1').allowed).toBe(false);
  });

  it.each([
    '::8.8.8.8',
    '::ffff:0:8.8.8.8',
    '64:ff9b::93.184.216.34',
    '64:ff9b:1:808:808:808:808:808',
    '2001:0:808:808::f7f7:f7f7',
    '2002:808:808::1',
  ])('allows %s, which carries a public address, once the operator allowed its range', (address) => {
    expect(new ExitPolicy({ allowDestinations: EMBEDDING_RANGES }).checkAddress(address)).toEqual({
      allowed: true,
    });
  });

  it.each(['2001:1::1', '2001:4860:4860::8888', '2003::1', '64:ff9b:2::1', '2001:db9::1'])(
    'allows %s, a neighbour of those ranges that carries nothing',
    (address) => {
      expect(new ExitPolicy().checkAddress(address)).toEqual({ allowed: true });
    },
  );
});
