import { Cidr, parseIp, unmapIPv4 } from './ip.js';

/**
 * What an exit will connect to (DESIGN.md "Rules of the house"). Default-deny for every address that reaches
 * into the exit's own network, checked on the resolved address actually dialed — never on the name.
 */
export const DENIED_RANGES: readonly { cidr: Cidr; why: string }[] = [
  ['0.0.0.0/8', 'unspecified / this network'],
  ['10.0.0.0/8', 'private (RFC 1918)'],
  ['100.64.0.0/10', 'carrier-grade NAT'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local (cloud metadata)'],
  ['172.16.0.0/12', 'private (RFC 1918)'],
  ['192.0.0.0/24', 'IETF protocol assignments'],
  ['192.168.0.0/16', 'private (RFC 1918)'],
  ['198.18.0.0/15', 'benchmarking'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved and broadcast'],
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['64:ff9b::/96', 'NAT64 (reaches IPv4 behind the exit)'],
  ['fc00::/7', 'unique-local'],
  ['fe80::/10', 'link-local'],
  ['ff00::/8', 'multicast'],
].map(([cidr, why]) => ({ cidr: Cidr.must(cidr!), why: why! }));

/** SMTP is never allowed: an open relay for spam would get every exit blocked. */
export const ALWAYS_DENIED_PORTS: readonly number[] = [25];

export interface ExitPolicyOptions {
  /** Ranges the operator explicitly allows even though the default denies them (tests: a local website). */
  allowDestinations?: readonly string[];
}

export type PolicyDecision = { allowed: true } | { allowed: false; reason: string };

export class ExitPolicy {
  private readonly allow: Cidr[];

  constructor(options: ExitPolicyOptions = {}) {
    this.allow = (options.allowDestinations ?? []).map((text) => {
      const cidr = Cidr.parse(text);
      if (!cidr) throw new Error(`--allow-destination: "${text}" is not a CIDR such as 127.0.0.1/32`);
      return cidr;
    });
  }

  checkPort(port: number): PolicyDecision {
    if (!Number.isInteger(port) || port < 1 || port > 65535) return { allowed: false, reason: 'bad port' };
    if (ALWAYS_DENIED_PORTS.includes(port))
      return { allowed: false, reason: `port ${port} is never allowed` };
    return { allowed: true };
  }

  /** `address` is what the resolver returned (or the literal the client sent), in canonical text form. */
  checkAddress(addressText: string): PolicyDecision {
    const parsed = parseIp(addressText);
    if (!parsed) return { allowed: false, reason: 'not an IP address' };
    const address = unmapIPv4(parsed);
    if (this.allow.some((cidr) => cidr.contains(address) || cidr.contains(parsed))) return { allowed: true };
    const denied = DENIED_RANGES.find(({ cidr }) => cidr.contains(address));
    return denied ? { allowed: false, reason: `${denied.why} (${denied.cidr.text})` } : { allowed: true };
  }

  /** One line for the exit's announcement and the directory. */
  summary(): string {
    const allowed = this.allow.length ? `; operator allows ${this.allow.map((c) => c.text).join(', ')}` : '';
    return `default-deny local and private ranges; ports 1-65535 except ${ALWAYS_DENIED_PORTS.join(', ')}${allowed}`;
  }
}
