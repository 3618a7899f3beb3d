/**
 * IP address parsing and CIDR matching, with no platform APIs (the exit policy runs in shared/ and is unit
 * tested there). Only canonical textual forms are accepted here: the policy is applied to addresses that the
 * resolver returned, never to names a client typed.
 */
export type IpAddress = { family: 4; value: bigint } | { family: 6; value: bigint };

export function parseIPv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

export function parseIPv6(text: string): bigint | undefined {
  let input = text;
  const zone = input.indexOf('%');
  if (zone !== -1) input = input.slice(0, zone);
  if (input.startsWith('[') && input.endsWith(']')) input = input.slice(1, -1);
  const halves = input.split('::');
  if (halves.length > 2) return undefined;
  // An embedded IPv4 part may only end the whole address: in the tail half, or in the only half.
  const parseGroups = (part: string, mayEndInIPv4: boolean): number[] | undefined => {
    if (part === '') return [];
    const groups: number[] = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (mayEndInIPv4 && i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIPv4(piece);
        if (v4 === undefined) return undefined;
        groups.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return undefined;
      groups.push(parseInt(piece, 16));
    }
    return groups;
  };
  const head = parseGroups(halves[0]!, halves.length === 1);
  const tail = halves.length === 2 ? parseGroups(halves[1]!, true) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  let value = 0n;
  for (const group of groups) value = (value << 16n) | BigInt(group);
  return value;
}

export function parseIp(text: string): IpAddress | undefined {
  const v4 = parseIPv4(text);
  if (v4 !== undefined) return { family: 4, value: v4 };
  const v6 = parseIPv6(text);
  if (v6 !== undefined) return { family: 6, value: v6 };
  return undefined;
}

const MAPPED_PREFIX = 0xffffn << 32n;

/** ::ffff:a.b.c.d is the IPv4 address a.b.c.d for every purpose of policy. */
export function unmapIPv4(address: IpAddress): IpAddress {
  if (address.family === 6 && address.value >> 32n === 0xffffn) {
    return { family: 4, value: address.value - MAPPED_PREFIX };
  }
  return address;
}

export class Cidr {
  private constructor(
    readonly family: 4 | 6,
    private readonly network: bigint,
    readonly prefix: number,
    readonly text: string,
  ) {}

  static parse(text: string): Cidr | undefined {
    const [addressText, prefixText, extra] = text.split('/');
    if (extra !== undefined || addressText === undefined) return undefined;
    const address = parseIp(addressText);
    if (!address) return undefined;
    const bits = address.family === 4 ? 32 : 128;
    // Plain decimal digits only: Number() would read "" as 0 (so "127.0.0.1/" would allow everything),
    // and accept signs, hex, exponents and spaces.
    if (prefixText !== undefined && !/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return undefined;
    const prefix = prefixText === undefined ? bits : Number(prefixText);
    if (prefix > bits) return undefined;
    const shift = BigInt(bits - prefix);
    return new Cidr(address.family, (address.value >> shift) << shift, prefix, text);
  }

  static must(text: string): Cidr {
    const cidr = Cidr.parse(text);
    if (!cidr) throw new Error(`bad CIDR ${text}`);
    return cidr;
  }

  /** A single address (/32, /128): naming one host on purpose, not a range that happens to hold it. */
  get isHost(): boolean {
    return this.prefix === (this.family === 4 ? 32 : 128);
  }

  contains(address: IpAddress): boolean {
    if (address.family !== this.family) return false;
    const shift = BigInt((this.family === 4 ? 32 : 128) - this.prefix);
    return (address.value >> shift) << shift === this.network;
  }
}

const V4_MASK = 0xffffffffn;
const v6Prefix = (address: IpAddress, bits: number): bigint => address.value >> BigInt(128 - bits);
/** 32 bits of an IPv6 address starting at bit `from` (0 = the most significant). */
const bitsAt = (value: bigint, from: number): bigint => (value >> BigInt(96 - from)) & V4_MASK;

/**
 * The IPv4 addresses an IPv6 address carries inside it, by the transition forms that reach IPv4 through it:
 * IPv4-compatible `::a.b.c.d` (::/96, deprecated), SIIT `::ffff:0:a.b.c.d` (::ffff:0:0:0/96), NAT64's
 * well-known `64:ff9b::/96` and local-use `64:ff9b:1::/48` (RFC 8215; every RFC 6052 position, since the
 * operator's prefix length is not known), 6to4 `2002:AABB:CCDD::/48` (bits 16–47) and Teredo `2001:0::/32`
 * (the server in bits 32–63, the client in the last 32 bits, inverted). IPv4-mapped `::ffff:a.b.c.d` is not
 * here: `unmapIPv4` makes it the IPv4 address itself. Empty for anything else (and for IPv4).
 */
export function embeddedIPv4(address: IpAddress): bigint[] {
  if (address.family !== 6) return [];
  const { value } = address;
  const top96 = v6Prefix(address, 96);
  // :: and ::1 are the unspecified and loopback addresses, not IPv4-compatible ones.
  if ((top96 === 0n && value > 1n) || top96 === 0xffff0000n || top96 === 0x64ff9b0000000000000000n)
    return [value & V4_MASK];
  if (v6Prefix(address, 48) === 0x64ff9b0001n) {
    // RFC 6052 §2.2: after a /48 the address skips bits 64–71 (the "u" octet); /56 and /64 likewise.
    const at48 = ((bitsAt(value, 48) >> 16n) << 16n) | ((value >> 40n) & 0xffffn);
    const at56 = ((bitsAt(value, 56) >> 24n) << 24n) | ((value >> 32n) & 0xffffffn);
    const at64 = bitsAt(value, 72);
    return [at48, at56, at64, value & V4_MASK];
  }
  if (v6Prefix(address, 16) === 0x2002n) return [bitsAt(value, 16)];
  if (v6Prefix(address, 32) === 0x20010000n) return [bitsAt(value, 32), (value & V4_MASK) ^ V4_MASK];
  return [];
}

export function formatIPv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => Number((value >> shift) & 0xffn)).join('.');
}
