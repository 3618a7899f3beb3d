import { describe, expect, it } from 'vitest';
import { Cidr, embeddedIPv4, formatIPv4, parseIp, parseIPv4, parseIPv6, unmapIPv4 } from '../src/exit/ip.js';

/** IPv6 groups as a bigint, so expectations read like the address. */
function v6(...groups: number[]): bigint {
  expect(groups).toHaveLength(8);
  return groups.reduce((value, group) => (value << 16n) | BigInt(group), 0n);
}

describe('parseIPv4', () => {
  it('parses dotted quads, including the extremes', () => {
    expect(parseIPv4('0.0.0.0')).toBe(0n);
    expect(parseIPv4('255.255.255.255')).toBe(0xffffffffn);
    expect(parseIPv4('127.0.0.1')).toBe(0x7f000001n);
    expect(parseIPv4('93.184.216.34')).toBe(0x5db8d822n);
  });

  it.each([
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '1.2.3.256',
    '01.2.3.4', // leading zero: octal in some resolvers, so never accepted
    '1.2.3.04',
    '0x7f.0.0.1',
    '127.1',
    '2130706433',
    '1.2.3.-4',
    '1.2.3.+4',
    ' 1.2.3.4',
    '1.2.3.4 ',
    '1..2.3',
    '1.2.3.4.',
    'a.b.c.d',
    '1.2.3.4/32',
    '1000.2.3.4',
  ])('rejects %j', (text) => {
    expect(parseIPv4(text)).toBeUndefined();
  });
});

describe('parseIPv6', () => {
  it('parses full, compressed and mixed-case forms', () => {
    expect(parseIPv6('2001:db8:0:0:0:0:0:1')).toBe(v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    expect(parseIPv6('2001:DB8::1')).toBe(v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    expect(parseIPv6('2606:2800:220:1::1')).toBe(v6(0x2606, 0x2800, 0x220, 1, 0, 0, 0, 1));
    expect(parseIPv6('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff')).toBe((1n << 128n) - 1n);
    expect(parseIPv6('0000:0000:0000:0000:0000:0000:0000:0001')).toBe(1n);
  });

  it('handles :: at the start, the end, the middle, and alone', () => {
    expect(parseIPv6('::')).toBe(0n);
    expect(parseIPv6('::1')).toBe(1n);
    expect(parseIPv6('fe80::')).toBe(v6(0xfe80, 0, 0, 0, 0, 0, 0, 0));
    expect(parseIPv6('1:2::7:8')).toBe(v6(1, 2, 0, 0, 0, 0, 7, 8));
    // RFC 4291 lets :: stand for a single zero group.
    expect(parseIPv6('1:2:3:4:5:6:7::')).toBe(v6(1, 2, 3, 4, 5, 6, 7, 0));
    expect(parseIPv6('::2:3:4:5:6:7:8')).toBe(v6(0, 2, 3, 4, 5, 6, 7, 8));
  });

  it('reads an embedded IPv4 address as the last two groups', () => {
    expect(parseIPv6('::ffff:127.0.0.1')).toBe(v6(0, 0, 0, 0, 0, 0xffff, 0x7f00, 1));
    expect(parseIPv6('::ffff:7f00:1')).toBe(parseIPv6('::ffff:127.0.0.1'));
    expect(parseIPv6('64:ff9b::192.0.2.33')).toBe(v6(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x221));
    expect(parseIPv6('1:2:3:4:5:6:1.2.3.4')).toBe(v6(1, 2, 3, 4, 5, 6, 0x102, 0x304));
    expect(parseIPv6('::1.2.3.4')).toBe(v6(0, 0, 0, 0, 0, 0, 0x102, 0x304));
  });

  it('ignores a zone id and accepts brackets', () => {
    expect(parseIPv6('fe80::1%eth0')).toBe(v6(0xfe80, 0, 0, 0, 0, 0, 0, 1));
    expect(parseIPv6('fe80::1%25')).toBe(parseIPv6('fe80::1'));
    expect(parseIPv6('[::1]')).toBe(1n);
  });

  it.each([
    '',
    ':',
    ':::',
    '1::2::3',
    '::1::',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '1:2:3:4::5:6:7:8', // :: must stand for at least one group
    ':1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:',
    '12345::',
    'g::1',
    '::ffff:256.0.0.1',
    '::ffff:1.2.3',
    '::ffff:01.2.3.4',
    '::1.2.3.4:5', // the IPv4 part must come last
    '1:2:3:4:5:6:7:1.2.3.4', // nine groups' worth
    '1.2.3.4',
    '127.0.0.1%eth0',
    '[::1',
    '::1]',
    ' ::1',
    '::1 ',
    '::-1',
  ])('rejects %j', (text) => {
    expect(parseIPv6(text)).toBeUndefined();
  });

  // Bug (see report: "ip.ts: embedded IPv4 accepted before '::'"): the embedded IPv4 check runs on the last
  // piece of *each* half, so an IPv4 tail before '::' is accepted as two leading groups.
  it.each(['1.2.3.4::', '1.2.3.4::5', '1:2:3:4:5:1.2.3.4::', '127.0.0.1::'])(
    'rejects an IPv4 part before "::" (%j)',
    (text) => {
      expect(parseIPv6(text)).toBeUndefined();
    },
  );
});

describe('parseIp and unmapIPv4', () => {
  it('tells the families apart', () => {
    expect(parseIp('10.1.2.3')).toEqual({ family: 4, value: 0x0a010203n });
    expect(parseIp('::a01:203')).toEqual({ family: 6, value: 0x0a010203n });
    expect(parseIp('example.com')).toBeUndefined();
    expect(parseIp('')).toBeUndefined();
  });

  it('unmaps ::ffff:a.b.c.d and leaves every other address alone', () => {
    expect(unmapIPv4(parseIp('::ffff:10.1.2.3')!)).toEqual({ family: 4, value: 0x0a010203n });
    expect(unmapIPv4(parseIp('::ffff:0.0.0.0')!)).toEqual({ family: 4, value: 0n });
    // IPv4-compatible (::a.b.c.d) and IPv4-translated (::ffff:0:a.b.c.d) are not the mapped form.
    expect(unmapIPv4(parseIp('::10.1.2.3')!)).toEqual({ family: 6, value: 0x0a010203n });
    expect(unmapIPv4(parseIp('::ffff:0:a01:203')!).family).toBe(6);
    expect(unmapIPv4(parseIp('10.1.2.3')!)).toEqual({ family: 4, value: 0x0a010203n });
    expect(unmapIPv4(parseIp('1::ffff:a01:203')!).family).toBe(6);
  });
});

describe('Cidr', () => {
  const ip = (text: string) => {
    const address = parseIp(text);
    if (!address) throw new Error(`test address ${text} does not parse`);
    return address;
  };

  it('matches exactly the addresses of an IPv4 prefix', () => {
    const cidr = Cidr.must('172.16.0.0/12');
    expect(cidr.family).toBe(4);
    expect(cidr.prefix).toBe(12);
    expect(cidr.text).toBe('172.16.0.0/12');
    expect(cidr.contains(ip('172.16.0.0'))).toBe(true);
    expect(cidr.contains(ip('172.31.255.255'))).toBe(true);
    expect(cidr.contains(ip('172.15.255.255'))).toBe(false);
    expect(cidr.contains(ip('172.32.0.0'))).toBe(false);
  });

  it('matches exactly the addresses of an IPv6 prefix', () => {
    const cidr = Cidr.must('fe80::/10');
    expect(cidr.contains(ip('fe80::'))).toBe(true);
    expect(cidr.contains(ip('febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff'))).toBe(true);
    expect(cidr.contains(ip('fec0::'))).toBe(false);
    expect(cidr.contains(ip('fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff'))).toBe(false);
  });

  it('treats /0 as the whole family and nothing of the other', () => {
    const any4 = Cidr.must('0.0.0.0/0');
    expect(any4.contains(ip('0.0.0.0'))).toBe(true);
    expect(any4.contains(ip('255.255.255.255'))).toBe(true);
    expect(any4.contains(ip('::'))).toBe(false);
    const any6 = Cidr.must('::/0');
    expect(any6.contains(ip('::'))).toBe(true);
    expect(any6.contains(ip('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'))).toBe(true);
    expect(any6.contains(ip('1.2.3.4'))).toBe(false);
  });

  it('treats /32, /128 and a bare address as a host route', () => {
    for (const text of ['127.0.0.1/32', '127.0.0.1']) {
      const cidr = Cidr.must(text);
      expect(cidr.prefix).toBe(32);
      expect(cidr.contains(ip('127.0.0.1'))).toBe(true);
      expect(cidr.contains(ip('127.0.0.0'))).toBe(false);
      expect(cidr.contains(ip('127.0.0.2'))).toBe(false);
    }
    for (const text of ['::1/128', '::1']) {
      const cidr = Cidr.must(text);
      expect(cidr.prefix).toBe(128);
      expect(cidr.contains(ip('::1'))).toBe(true);
      expect(cidr.contains(ip('::'))).toBe(false);
      expect(cidr.contains(ip('::2'))).toBe(false);
    }
  });

  it('does not match the same bits across families', () => {
    // ::a00:1 has the same 32 low bits as 10.0.0.1 but is another address.
    expect(Cidr.must('10.0.0.0/8').contains(ip('::a00:1'))).toBe(false);
    expect(Cidr.must('::/96').contains(ip('10.0.0.1'))).toBe(false);
  });

  it('masks host bits set in the network part', () => {
    const cidr = Cidr.must('10.1.2.3/8');
    expect(cidr.contains(ip('10.255.0.0'))).toBe(true);
    expect(cidr.contains(ip('11.0.0.0'))).toBe(false);
  });

  it.each([
    '',
    '/8',
    '10.0.0.0/33',
    '::/129',
    '10.0.0.0/-1',
    '10.0.0.0/08',
    '10.0.0.0/8/8',
    '10.0.0.0/abc',
    '10.0.0.0/8.5',
    '10.0.0.0/0x8',
    'example.com/8',
    '10.0.0/8',
  ])('rejects %j', (text) => {
    expect(Cidr.parse(text)).toBeUndefined();
    expect(() => Cidr.must(text)).toThrow();
  });

  // Bug (see report: "ip.ts: Cidr.parse prefix is read with Number()"): an empty prefix parses as /0, so an
  // operator's `--allow-destination 127.0.0.1/` would allow every IPv4 address; hex, signs, exponent and
  // spaces are accepted too.
  it.each(['10.0.0.0/', '10.0.0.0/-0', '10.0.0.0/ 8', '10.0.0.0/+8', '10.0.0.0/8.0', '10.0.0.0/1e1'])(
    'rejects a prefix that is not plain decimal digits (%j)',
    (text) => {
      expect(Cidr.parse(text)).toBeUndefined();
    },
  );
});

describe('embeddedIPv4', () => {
  const embedded = (text: string) => embeddedIPv4(parseIp(text)!).map(formatIPv4);

  it.each([
    ['::1.2.3.4', ['1.2.3.4']],
    ['::2', ['0.0.0.2']],
    ['::ffff:0:1.2.3.4', ['1.2.3.4']],
    ['64:ff9b::1.2.3.4', ['1.2.3.4']],
    // Local-use NAT64: the RFC 6052 positions for a /48, /56, /64 and /96 prefix, in that order.
    ['64:ff9b:1:102:3:400::', ['1.2.3.4', '2.3.4.0', '3.4.0.0', '0.0.0.0']],
    ['64:ff9b:1:1:2:304::', ['0.1.2.3', '1.2.3.4', '2.3.4.0', '0.0.0.0']],
    ['64:ff9b:1:0:1:203:400:0', ['0.0.1.2', '0.1.2.3', '1.2.3.4', '4.0.0.0']],
    ['64:ff9b:1::1.2.3.4', ['0.0.0.0', '0.0.0.0', '0.0.0.1', '1.2.3.4']],
    ['2002:102:304::1', ['1.2.3.4']],
    ['2002:102:304:ffff:ffff:ffff:ffff:ffff', ['1.2.3.4']],
    // Teredo: server, then the client, whose bits are sent inverted.
    ['2001:0:102:304:8000:f227:fefd:fcfb', ['1.2.3.4', '1.2.3.4']],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', ['65.54.227.120', '192.0.2.45']], // RFC 4380's own example
  ])('%s carries %j', (text, expected) => {
    expect(embedded(text)).toEqual(expected);
  });

  it.each([
    '1.2.3.4',
    '::ffff:1.2.3.4',
    '2001:db8::1.2.3.4',
    '2001:1::1',
    '2003::1',
    '64:ff9b:2::1',
    'fe80::1',
  ])('%s carries nothing (IPv4-mapped is unmapped, not embedded)', (text) => {
    expect(embedded(text)).toEqual([]);
  });
});
