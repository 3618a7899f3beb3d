import { describe, expect, it } from 'vitest';
import {
  buildSocksReply,
  formatIpv6,
  Socks5Handshake,
  SocksReply,
  socksReplyForStreamError,
  type SocksStep,
} from '../src/socks5.js';

const METHOD_OK = [5, 0];
const reply = (code: number) => [5, code, 0, 1, 0, 0, 0, 0, 0, 0];
const bytes = (step: SocksStep) => step.send.flatMap((b) => [...b]);

function domainRequest(name: string, port = 443): number[] {
  const encoded = [...Buffer.from(name, 'latin1')];
  return [5, 1, 0, 3, encoded.length, ...encoded, port >> 8, port & 255];
}

/** Feeds `input` one byte at a time and returns the final step plus every byte the parser sent. */
function feedBytewise(input: number[]): { step: SocksStep; sent: number[] } {
  const parser = new Socks5Handshake();
  const sent: number[] = [];
  let step: SocksStep = { state: 'pending', send: [] };
  for (const byte of input) {
    step = parser.feed(Uint8Array.of(byte));
    sent.push(...bytes(step));
    if (step.state !== 'pending') break;
  }
  return { step, sent };
}

describe('Socks5Handshake', () => {
  it('parses a domain CONNECT sent in one chunk', () => {
    const step = new Socks5Handshake().feed(Uint8Array.from([5, 1, 0, ...domainRequest('example.com', 443)]));
    expect(step.state).toBe('request');
    expect(bytes(step)).toEqual(METHOD_OK);
    if (step.state !== 'request') return;
    expect(step.request).toEqual({ host: 'example.com', port: 443, addressType: 'domain' });
    expect(step.rest.length).toBe(0);
  });

  it('parses a request split over many chunks, one byte each', () => {
    const { step, sent } = feedBytewise([5, 2, 2, 0, ...domainRequest('a.example.org', 8080)]);
    expect(sent).toEqual(METHOD_OK);
    expect(step.state).toBe('request');
    if (step.state === 'request')
      expect(step.request).toEqual({ host: 'a.example.org', port: 8080, addressType: 'domain' });
  });

  it('accepts an IP literal sent as a domain name, as Chrome does', () => {
    const parser = new Socks5Handshake();
    parser.feed(Uint8Array.from([5, 1, 0]));
    const step = parser.feed(Uint8Array.from(domainRequest('127.0.0.2', 80)));
    expect(step.state === 'request' && step.request.host).toBe('127.0.0.2');
    const v6 = new Socks5Handshake().feed(Uint8Array.from([5, 1, 0, ...domainRequest('[2001:db8::1]', 80)]));
    expect(v6.state === 'request' && v6.request.host).toBe('2001:db8::1');
  });

  it('parses IPv4 and IPv6 addresses', () => {
    const v4 = new Socks5Handshake().feed(Uint8Array.from([5, 1, 0, 5, 1, 0, 1, 93, 184, 216, 34, 0, 80]));
    expect(v4.state === 'request' && v4.request).toEqual({
      host: '93.184.216.34',
      port: 80,
      addressType: 'ipv4',
    });
    const address = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const v6 = new Socks5Handshake().feed(Uint8Array.from([5, 1, 0, 5, 1, 0, 4, ...address, 1, 187]));
    expect(v6.state === 'request' && v6.request).toEqual({
      host: '2001:db8::1',
      port: 443,
      addressType: 'ipv6',
    });
  });

  it('hands over bytes sent after the request', () => {
    const step = new Socks5Handshake().feed(
      Uint8Array.from([5, 1, 0, ...domainRequest('x.org', 80), 71, 69, 84]),
    );
    expect(step.state === 'request' && [...step.rest]).toEqual([71, 69, 84]);
  });

  it('closes without a reply on a wrong greeting version', () => {
    const step = new Socks5Handshake().feed(Uint8Array.from([4, 1, 0, 80, 0, 0, 0, 1]));
    expect(step.state).toBe('rejected');
    expect(bytes(step)).toEqual([]);
  });

  it('closes without a reply on a wrong request version', () => {
    const step = new Socks5Handshake().feed(Uint8Array.from([5, 1, 0, 4, 1, 0, 3]));
    expect(step.state).toBe('rejected');
    expect(bytes(step)).toEqual(METHOD_OK);
  });

  it('answers 0xFF when no-auth is not offered', () => {
    const step = new Socks5Handshake().feed(Uint8Array.from([5, 2, 1, 2]));
    expect(step.state).toBe('rejected');
    expect(bytes(step)).toEqual([5, 0xff]);
    expect(bytes(new Socks5Handshake().feed(Uint8Array.from([5, 0])))).toEqual([5, 0xff]);
  });

  it.each([
    ['BIND', 2],
    ['UDP ASSOCIATE', 3],
    ['an unknown command', 9],
  ])('refuses %s with 0x07 as soon as the command byte arrives', (_name, command) => {
    const { step, sent } = feedBytewise([5, 1, 0, 5, command, 0, 1, 1, 2, 3, 4, 0, 80]);
    expect(step.state).toBe('rejected');
    expect(sent).toEqual([...METHOD_OK, ...reply(0x07)]);
  });

  it('refuses an unknown address type with 0x08', () => {
    const step = new Socks5Handshake().feed(Uint8Array.from([5, 1, 0, 5, 1, 0, 2, 1, 2, 3, 4, 0, 80]));
    expect(step.state).toBe('rejected');
    expect(bytes(step)).toEqual([...METHOD_OK, ...reply(0x08)]);
  });

  it('refuses a non-zero reserved byte with 0x01', () => {
    const step = new Socks5Handshake().feed(Uint8Array.from([5, 1, 0, 5, 1, 7, 1, 1, 2, 3, 4, 0, 80]));
    expect(bytes(step)).toEqual([...METHOD_OK, ...reply(0x01)]);
  });

  it('refuses port 0 with 0x01', () => {
    const step = new Socks5Handshake().feed(Uint8Array.from([5, 1, 0, ...domainRequest('example.com', 0)]));
    expect(step.state).toBe('rejected');
    expect(bytes(step)).toEqual([...METHOD_OK, ...reply(0x01)]);
  });

  it.each([
    ['oversized (254 characters)', `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`],
    ['empty', ''],
    ['a label over 63 characters', `${'a'.repeat(64)}.com`],
    ['a space', 'exa mple.com'],
    ['a NUL byte', 'example.com\u0000.evil'],
    ['a percent sign', 'fe80::1%eth0'],
    ['a slash', 'example.com/path'],
    ['an empty label', 'a..b'],
    ['a broken IPv6 literal', '1:2:3:4:5:6:7:8:9'],
    ['a non-ASCII byte', 'ex\u00e4mple.com'],
  ])('refuses a domain with %s with 0x01', (_name, name) => {
    const step = new Socks5Handshake().feed(Uint8Array.from([5, 1, 0, ...domainRequest(name)]));
    expect(step.state).toBe('rejected');
    expect(bytes(step)).toEqual([...METHOD_OK, ...reply(0x01)]);
  });

  it('accepts the longest legal name (253 characters, and with the root dot)', () => {
    const name = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    expect(name.length).toBe(253);
    const step = new Socks5Handshake().feed(Uint8Array.from([5, 1, 0, ...domainRequest(`${name}.`)]));
    expect(step.state === 'request' && step.request.host).toBe(name);
  });

  it('refuses further input once finished', () => {
    const parser = new Socks5Handshake();
    parser.feed(Uint8Array.from([5, 1, 0, ...domainRequest('x.org')]));
    expect(parser.feed(Uint8Array.of(1)).state).toBe('rejected');
  });

  it('stays pending on a truncated request', () => {
    const parser = new Socks5Handshake();
    const full = [5, 1, 0, ...domainRequest('example.com')];
    expect(parser.feed(Uint8Array.from(full.slice(0, full.length - 1))).state).toBe('pending');
    expect(parser.feed(Uint8Array.from(full.slice(-1))).state).toBe('request');
  });
});

describe('replies', () => {
  it('builds a reply with a zero bound address', () => {
    expect([...buildSocksReply(SocksReply.succeeded)]).toEqual(reply(0));
  });

  it('maps stream errors to SOCKS reply codes', () => {
    expect(socksReplyForStreamError('policy-denied')).toBe(0x02);
    expect(socksReplyForStreamError('dns-failed')).toBe(0x04);
    expect(socksReplyForStreamError('unreachable')).toBe(0x03);
    expect(socksReplyForStreamError('refused')).toBe(0x05);
    expect(socksReplyForStreamError('timeout')).toBe(0x06);
    expect(socksReplyForStreamError('limit')).toBe(0x01);
    expect(socksReplyForStreamError('session-closed')).toBe(0x01);
  });

  it('formats IPv6 addresses per RFC 5952', () => {
    const addr = (...groups: number[]) => Uint8Array.from(groups.flatMap((g) => [g >> 8, g & 255]));
    expect(formatIpv6(addr(0, 0, 0, 0, 0, 0, 0, 1))).toBe('::1');
    expect(formatIpv6(addr(0, 0, 0, 0, 0, 0, 0, 0))).toBe('::');
    expect(formatIpv6(addr(0x2001, 0xdb8, 0, 0, 1, 0, 0, 1))).toBe('2001:db8::1:0:0:1');
    expect(formatIpv6(addr(0x2001, 0xdb8, 0, 1, 1, 1, 1, 1))).toBe('2001:db8:0:1:1:1:1:1');
    expect(formatIpv6(addr(0xfe80, 0, 0, 0, 0, 0, 0, 0))).toBe('fe80::');
  });
});
