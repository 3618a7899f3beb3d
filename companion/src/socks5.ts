import type { StreamErrorCode } from '@underpass/shared/errors';

/**
 * The server side of a SOCKS5 handshake (RFC 1928), as a pure incremental state machine: feed it the bytes the
 * client sends, in chunks of any size, and it says what to write back and whether the handshake is done or
 * must be abandoned. It never buffers more than one greeting or one request (≤ 262 bytes), so a client cannot
 * grow memory by dribbling bytes.
 *
 * Only "no authentication" and only CONNECT are offered: the endpoint listens on 127.0.0.1, and BIND/UDP
 * ASSOCIATE cannot be carried by the tunnel.
 */

export const SOCKS_VERSION = 0x05;
export const METHOD_NO_AUTH = 0x00;
export const METHOD_NONE_ACCEPTABLE = 0xff;
export const CMD_CONNECT = 0x01;
export const ATYP_IPV4 = 0x01;
export const ATYP_DOMAIN = 0x03;
export const ATYP_IPV6 = 0x04;

/** RFC 1928 §6 reply codes. */
export const SocksReply = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowedByRuleset: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;
export type SocksReplyCode = (typeof SocksReply)[keyof typeof SocksReply];

/** The longest DNS name in presentation form (RFC 1035 §2.3.4: 255 octets on the wire). */
export const MAX_DOMAIN_LENGTH = 253;

export type SocksAddressType = 'ipv4' | 'domain' | 'ipv6';

export interface SocksConnectRequest {
  /** A DNS name or an IP literal (IPv6 without brackets). Names are resolved at the exit, never here. */
  host: string;
  port: number;
  addressType: SocksAddressType;
}

/** What to do after feeding bytes. `send` is written first, in order, in every outcome. */
export type SocksStep =
  | { state: 'pending'; send: Uint8Array[] }
  /** The CONNECT request is complete; `rest` is whatever the client sent after it (optimistic data). */
  | { state: 'request'; send: Uint8Array[]; request: SocksConnectRequest; rest: Uint8Array }
  /** The client broke the protocol: write `send` (maybe a reply, maybe nothing) and close the socket. */
  | { state: 'rejected'; send: Uint8Array[]; reason: string };

type Phase = 'greeting' | 'request' | 'done';

export class Socks5Handshake {
  private phase: Phase = 'greeting';
  private buffer: Uint8Array = new Uint8Array(0);

  /** Feed the next chunk from the client. After a 'request' or 'rejected' step, further input is refused. */
  feed(chunk: Uint8Array): SocksStep {
    if (this.phase === 'done') return { state: 'rejected', send: [], reason: 'handshake already finished' };
    this.buffer = concat(this.buffer, chunk);
    const send: Uint8Array[] = [];

    if (this.phase === 'greeting') {
      const greeting = parseGreeting(this.buffer);
      if (greeting.kind === 'incomplete') return { state: 'pending', send };
      if (greeting.kind === 'bad-version') return this.reject(send, [], greeting.reason);
      if (!greeting.methods.includes(METHOD_NO_AUTH)) {
        return this.reject(
          send,
          [Uint8Array.of(SOCKS_VERSION, METHOD_NONE_ACCEPTABLE)],
          'no acceptable method',
        );
      }
      send.push(Uint8Array.of(SOCKS_VERSION, METHOD_NO_AUTH));
      this.buffer = this.buffer.subarray(greeting.length);
      this.phase = 'request';
    }

    const parsed = parseRequest(this.buffer);
    if (parsed.kind === 'incomplete') return { state: 'pending', send };
    if (parsed.kind === 'bad-version') return this.reject(send, [], parsed.reason);
    if (parsed.kind === 'refused') return this.reject(send, [buildSocksReply(parsed.reply)], parsed.reason);
    this.phase = 'done';
    const rest = this.buffer.slice(parsed.length);
    this.buffer = new Uint8Array(0);
    return { state: 'request', send, request: parsed.request, rest };
  }

  private reject(send: Uint8Array[], extra: Uint8Array[], reason: string): SocksStep {
    this.phase = 'done';
    this.buffer = new Uint8Array(0);
    return { state: 'rejected', send: [...send, ...extra], reason };
  }
}

/**
 * A reply to the CONNECT request. The bound address is always 0.0.0.0:0: the real socket is at the exit, and
 * telling the client anything about it would be a lie or a leak.
 */
export function buildSocksReply(code: SocksReplyCode): Uint8Array {
  return Uint8Array.of(SOCKS_VERSION, code, 0x00, ATYP_IPV4, 0, 0, 0, 0, 0, 0);
}

/**
 * How a failed stream is reported to the SOCKS client. `timeout` has no RFC 1928 code of its own; "TTL
 * expired" is the conventional stand-in and, unlike "host unreachable", tells a user that trying again may
 * help. `unreachable` (no tunnel, or the exit has no route) is "network unreachable" so that it can be told
 * apart from a name that did not resolve ("host unreachable").
 */
export function socksReplyForStreamError(code: StreamErrorCode | string): SocksReplyCode {
  switch (code) {
    case 'policy-denied':
      return SocksReply.notAllowedByRuleset;
    case 'dns-failed':
      return SocksReply.hostUnreachable;
    case 'unreachable':
      return SocksReply.networkUnreachable;
    case 'refused':
      return SocksReply.connectionRefused;
    case 'timeout':
      return SocksReply.ttlExpired;
    default:
      return SocksReply.generalFailure;
  }
}

type Greeting =
  | { kind: 'incomplete' }
  | { kind: 'bad-version'; reason: string }
  | { kind: 'ok'; methods: number[]; length: number };

function parseGreeting(b: Uint8Array): Greeting {
  if (b.length < 1) return { kind: 'incomplete' };
  // A wrong version gets no reply: we cannot know what protocol the peer speaks, so we say nothing in it.
  if (b[0] !== SOCKS_VERSION) return { kind: 'bad-version', reason: `greeting version ${b[0]}` };
  if (b.length < 2) return { kind: 'incomplete' };
  const count = b[1] as number;
  if (b.length < 2 + count) return { kind: 'incomplete' };
  return { kind: 'ok', methods: [...b.subarray(2, 2 + count)], length: 2 + count };
}

type Request =
  | { kind: 'incomplete' }
  | { kind: 'bad-version'; reason: string }
  | { kind: 'refused'; reply: SocksReplyCode; reason: string }
  | { kind: 'ok'; request: SocksConnectRequest; length: number };

function parseRequest(b: Uint8Array): Request {
  if (b.length < 1) return { kind: 'incomplete' };
  if (b[0] !== SOCKS_VERSION) return { kind: 'bad-version', reason: `request version ${b[0]}` };
  if (b.length < 2) return { kind: 'incomplete' };
  // The command is refused as soon as it is seen: nothing after it can make it acceptable.
  if (b[1] !== CMD_CONNECT) {
    return { kind: 'refused', reply: SocksReply.commandNotSupported, reason: `command ${b[1]}` };
  }
  if (b.length < 3) return { kind: 'incomplete' };
  if (b[2] !== 0x00)
    return { kind: 'refused', reply: SocksReply.generalFailure, reason: 'reserved byte not 0' };
  if (b.length < 4) return { kind: 'incomplete' };
  const atyp = b[3];

  let addressType: SocksAddressType;
  let host: string;
  let addressEnd: number;
  switch (atyp) {
    case ATYP_IPV4:
      addressEnd = 4 + 4;
      if (b.length < addressEnd + 2) return { kind: 'incomplete' };
      addressType = 'ipv4';
      host = [...b.subarray(4, 8)].join('.');
      break;
    case ATYP_IPV6:
      addressEnd = 4 + 16;
      if (b.length < addressEnd + 2) return { kind: 'incomplete' };
      addressType = 'ipv6';
      host = formatIpv6(b.subarray(4, 20));
      break;
    case ATYP_DOMAIN: {
      if (b.length < 5) return { kind: 'incomplete' };
      const length = b[4] as number;
      addressEnd = 5 + length;
      if (b.length < addressEnd + 2) return { kind: 'incomplete' };
      const name = normalizeDomain(b.subarray(5, addressEnd));
      if (name === undefined) {
        return { kind: 'refused', reply: SocksReply.generalFailure, reason: 'invalid domain name' };
      }
      addressType = 'domain';
      host = name;
      break;
    }
    default:
      return { kind: 'refused', reply: SocksReply.addressTypeNotSupported, reason: `address type ${atyp}` };
  }
  const port = ((b[addressEnd] as number) << 8) | (b[addressEnd + 1] as number);
  if (port === 0) return { kind: 'refused', reply: SocksReply.generalFailure, reason: 'port 0' };
  return { kind: 'ok', request: { host, port, addressType }, length: addressEnd + 2 };
}

/**
 * Accepts a DNS name (letters, digits, hyphen, underscore, dots; labels of 1–63 octets; at most 253 octets
 * without the root dot) or an IP literal, which Chrome sends as a domain-type address. Anything else —
 * empty, control bytes, spaces, `%`, `/`, `@` — is refused here rather than handed to a resolver at the exit.
 */
function normalizeDomain(raw: Uint8Array): string | undefined {
  let name = '';
  for (const byte of raw) name += String.fromCharCode(byte);
  if (name.startsWith('[') && name.endsWith(']')) name = name.slice(1, -1);
  if (name.includes(':')) return isIpv6Literal(name) ? name.toLowerCase() : undefined;
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name.length === 0 || name.length > MAX_DOMAIN_LENGTH) return undefined;
  for (const label of name.split('.')) {
    if (!/^[A-Za-z0-9_-]{1,63}$/.test(label)) return undefined;
  }
  return name;
}

function isIpv6Literal(text: string): boolean {
  if (text.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(text)) return false;
  let groups = text;
  let groupCount = 8;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    // An embedded IPv4 address (::ffff:1.2.3.4) fills the last two groups.
    const octets = tail.split('.');
    if (octets.length !== 4 || !octets.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255)) return false;
    groups = text.slice(0, lastColon + 1) + '0';
    groupCount = 7;
  }
  const halves = groups.split('::');
  if (halves.length > 2) return false;
  const parse = (part: string): string[] | undefined => {
    if (part === '') return [];
    const items = part.split(':');
    return items.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g)) ? items : undefined;
  };
  const head = parse(halves[0] as string);
  if (head === undefined) return false;
  if (halves.length === 1) return head.length === groupCount;
  const rest = parse(halves[1] as string);
  if (rest === undefined) return false;
  return head.length + rest.length < groupCount;
}

/** RFC 5952 text form: lower case, leading zeros dropped, the longest run of ≥ 2 zero groups as `::`. */
export function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
