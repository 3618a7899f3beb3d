/**
 * Whose connection this is, for the per-address connection cap. Behind a TLS reverse proxy every socket comes
 * from the proxy, so the cap would be one cap for everyone; a proxy the operator trusts says who its client
 * was (`Forwarded: for=…`, RFC 7239, or `X-Forwarded-For`). Only proxies named with `--trusted-proxy` are
 * believed: anyone else can write those headers. The chain is read from the right (the nearest hop), skipping
 * trusted proxies, and the first address that is not one is the client.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Cidr, formatIPv4, parseIp, unmapIPv4, type IpAddress } from '@underpass/shared/exit';

/** Entries read from the right at most: a longer chain is attributed to the proxy that sent it. */
const MAX_HOPS = 32;

export class TrustedProxies {
  private constructor(private readonly ranges: readonly Cidr[]) {}

  /** Throws a RangeError naming the first entry that is not an address or CIDR range. */
  static parse(entries: readonly string[]): TrustedProxies {
    return new TrustedProxies(
      entries.map((entry) => {
        const cidr = Cidr.parse(entry.trim());
        if (!cidr) throw new RangeError(`not an IP address or CIDR range: ${entry}`);
        return cidr;
      }),
    );
  }

  static readonly none = new TrustedProxies([]);

  get empty(): boolean {
    return this.ranges.length === 0;
  }

  trusts(address: IpAddress): boolean {
    return this.ranges.some((range) => range.contains(address));
  }

  /**
   * The client's address: the socket's own unless it comes from a trusted proxy that says otherwise. A chain
   * with a malformed entry before the first untrusted address counts as the proxy's own connection, so a bad
   * header can never move a connection out of the proxy's share.
   */
  clientAddress(socketAddress: string | undefined, headers: IncomingHttpHeaders): string {
    const peer = socketAddress ?? 'unknown';
    const parsedPeer = parseAddress(peer);
    if (this.empty || !parsedPeer || !this.trusts(parsedPeer)) return peer;
    const chain = forwardedChain(headers);
    if (chain === undefined) return peer;
    for (const entry of chain.slice(-MAX_HOPS).reverse()) {
      const address = parseAddress(entry);
      if (!address) return peer;
      if (!this.trusts(address)) return canonical(address);
    }
    return peer;
  }
}

/** The addresses a proxy reported, leftmost first: `Forwarded`'s `for=` values, else `X-Forwarded-For`. */
function forwardedChain(headers: IncomingHttpHeaders): string[] | undefined {
  const forwarded = headers.forwarded;
  if (forwarded) {
    return forwarded.split(',').map((element) => {
      const pair = element
        .split(';')
        .map((part) => part.trim())
        .find((part) => part.toLowerCase().startsWith('for='));
      return pair ? stripForwardedNode(pair.slice(4)) : '';
    });
  }
  const xff = headers['x-forwarded-for'];
  const value = Array.isArray(xff) ? xff.join(',') : xff;
  return value ? value.split(',').map((part) => part.trim()) : undefined;
}

/** A `Forwarded` node: optionally quoted, an IPv6 address in brackets, either maybe with a port. */
function stripForwardedNode(node: string): string {
  const unquoted = node.startsWith('"') && node.endsWith('"') ? node.slice(1, -1) : node;
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(unquoted);
  if (bracketed) return bracketed[1]!;
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(unquoted);
  return v4WithPort ? v4WithPort[1]! : unquoted;
}

/** An address as written by a socket or proxy, IPv4-mapped IPv6 read as the IPv4 address. */
function parseAddress(text: string): IpAddress | undefined {
  const address = parseIp(text);
  return address && unmapIPv4(address);
}

/** One spelling per address, so that a client cannot spread over several counts by writing it differently. */
function canonical(address: IpAddress): string {
  if (address.family === 4) return formatIPv4(address.value);
  const hex = address.value.toString(16).padStart(32, '0');
  const groups = hex.match(/.{4}/g)!.join(':');
  return new URL(`http://[${groups}]`).hostname.slice(1, -1);
}
