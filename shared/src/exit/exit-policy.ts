import { Cidr, embeddedIPv4, formatIPv4, parseIp, unmapIPv4, type IpAddress } from './ip.js';

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
  // IPv6 forms that carry an IPv4 address (see embeddedIPv4). Denied whole: no website is reached through
  // them (they are deprecated or only mean something inside a translator), and where a route for them exists
  // it leads into IPv4 — possibly the exit's own network. The embedded address is checked as well, so an
  // operator who allows one of these ranges still reaches only what the IPv4 policy allows.
  ['::/96', 'IPv4-compatible (deprecated; embeds IPv4)'],
  ['::ffff:0:0:0/96', 'SIIT IPv4-translated (embeds IPv4)'],
  ['64:ff9b::/96', 'NAT64 (reaches IPv4 behind the exit)'],
  ['64:ff9b:1::/48', 'local-use NAT64 (reaches IPv4 behind the exit)'],
  ['2001::/32', 'Teredo (embeds IPv4)'],
  ['2002::/16', '6to4 (embeds IPv4)'],
  ['fc00::/7', 'unique-local'],
  ['fe80::/10', 'link-local'],
  ['ff00::/8', 'multicast'],
].map(([cidr, why]) => ({ cidr: Cidr.must(cidr!), why: why! }));

/** SMTP is never allowed: an open relay for spam would get every exit blocked. No flag opens it. */
export const ALWAYS_DENIED_PORTS: readonly number[] = [25];

/**
 * Ports an exit refuses unless the operator opens them with `--allow-port`: the reject lines of Tor's default
 * exit policy, for the same reasons — Usenet (119, 563), Windows RPC and file sharing (135–139, 445: worms,
 * and nothing a browser needs), and file-sharing networks whose traffic brings abuse complaints to exit
 * operators (1214, 4661–4666, 6346–6429, 6699, 6881–6999). Everything else from 1 to 65535 is allowed, because
 * browsers reach web servers on arbitrary ports.
 */
export const DEFAULT_DENIED_PORTS: readonly PortRange[] = [
  [25, 25],
  [119, 119],
  [135, 139],
  [445, 445],
  [563, 563],
  [1214, 1214],
  [4661, 4666],
  [6346, 6429],
  [6699, 6699],
  [6881, 6999],
];

/** Inclusive: [first, last]. */
export type PortRange = readonly [number, number];

/** "443" or "6881-6999" → a range; undefined for anything else (ports are 1–65535, first ≤ last). */
export function parsePortRange(text: string): PortRange | undefined {
  const match = /^([1-9][0-9]{0,4})(?:-([1-9][0-9]{0,4}))?$/.exec(text);
  if (!match) return undefined;
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  if (first > 65535 || last > 65535 || first > last) return undefined;
  return [first, last];
}

function formatRanges(ranges: readonly PortRange[]): string {
  return ranges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(', ');
}

export interface ExitPolicyOptions {
  /** Ranges the operator explicitly allows even though the default denies them (tests: a local website). */
  allowDestinations?: readonly string[];
  /** Ports or ranges ("6881-6999") taken out of the default denied set. Port 25 cannot be allowed. */
  allowPorts?: readonly string[];
  /** Further ports or ranges to deny. */
  denyPorts?: readonly string[];
  /**
   * The exit host's own addresses (every interface's, the bind address, a public address behind NAT), asked
   * on every check: the host (exit-node/src/own-addresses.ts) re-reads its interfaces at most every few
   * seconds and returns the same array while nothing changed, so the parsed set is kept until it does. All
   * are denied, whatever their range; an `allowDestinations` range that contains one does not re-open it,
   * only an entry naming exactly that address (/32, /128) does (an operator reaching a service of the exit
   * host on purpose; tests reaching a website on 127.0.0.1).
   */
  ownAddresses?: () => readonly string[];
}

export type PolicyDecision = { allowed: true } | { allowed: false; reason: string };

export class ExitPolicy {
  private readonly allow: Cidr[];
  /** Denied ports as a sorted list of disjoint ranges. */
  private readonly deniedPorts: PortRange[];
  private readonly ownAddresses: (() => readonly string[]) | undefined;
  /** The last list `ownAddresses` returned, and its addresses as keys (see addressKey). */
  private ownList: readonly string[] | undefined;
  private ownKeys = new Set<string>();

  constructor(options: ExitPolicyOptions = {}) {
    this.ownAddresses = options.ownAddresses;
    this.allow = (options.allowDestinations ?? []).map((text) => {
      const cidr = Cidr.parse(text);
      if (!cidr) throw new Error(`--allow-destination: "${text}" is not a CIDR such as 127.0.0.1/32`);
      return cidr;
    });
    const parse = (flag: string) => (text: string) => {
      const range = parsePortRange(text);
      if (!range) throw new Error(`${flag}: "${text}" is not a port (1-65535) or a range such as 6881-6999`);
      return range;
    };
    const allowPorts = (options.allowPorts ?? []).map(parse('--allow-port'));
    const denyPorts = (options.denyPorts ?? []).map(parse('--deny-port'));
    for (const [first, last] of allowPorts) {
      const never = ALWAYS_DENIED_PORTS.find((port) => port >= first && port <= last);
      if (never !== undefined) throw new Error(`--allow-port: port ${never} is never allowed`);
    }
    const denied = new Set<number>();
    for (const [first, last] of [...DEFAULT_DENIED_PORTS, ...denyPorts]) {
      for (let port = first; port <= last; port++) denied.add(port);
    }
    for (const [first, last] of allowPorts) {
      for (let port = first; port <= last; port++) denied.delete(port);
    }
    for (const port of ALWAYS_DENIED_PORTS) denied.add(port);
    this.deniedPorts = toRanges([...denied].sort((a, b) => a - b));
  }

  checkPort(port: number): PolicyDecision {
    if (!Number.isInteger(port) || port < 1 || port > 65535) return { allowed: false, reason: 'bad port' };
    if (ALWAYS_DENIED_PORTS.includes(port))
      return { allowed: false, reason: `port ${port} is never allowed` };
    if (this.deniedPorts.some(([first, last]) => port >= first && port <= last))
      return { allowed: false, reason: `port ${port} is denied by this exit's port policy` };
    return { allowed: true };
  }

  /** `address` is what the resolver returned (or the literal the client sent), in canonical text form. */
  checkAddress(addressText: string): PolicyDecision {
    const parsed = parseIp(addressText);
    if (!parsed) return { allowed: false, reason: 'not an IP address' };
    const address = unmapIPv4(parsed);
    // An IPv4 address inside an IPv6 one is judged as itself first, whatever the operator allowed of IPv6.
    for (const inner of embeddedIPv4(address)) {
      const decision = this.check({ family: 4, value: inner }, { family: 4, value: inner });
      if (!decision.allowed)
        return { allowed: false, reason: `embeds ${formatIPv4(inner)}: ${decision.reason}` };
    }
    return this.check(address, parsed);
  }

  /** `address` unmapped, `parsed` as written (an operator may have allowed the IPv4-mapped form itself). */
  private check(address: IpAddress, parsed: IpAddress): PolicyDecision {
    if (this.isOwn(address) && !this.allow.some((cidr) => cidr.isHost && cidr.contains(address)))
      return { allowed: false, reason: "the exit's own address" };
    if (this.allow.some((cidr) => cidr.contains(address) || cidr.contains(parsed))) return { allowed: true };
    const denied = DENIED_RANGES.find(({ cidr }) => cidr.contains(address));
    return denied ? { allowed: false, reason: `${denied.why} (${denied.cidr.text})` } : { allowed: true };
  }

  private isOwn(address: IpAddress): boolean {
    if (!this.ownAddresses) return false;
    const list = this.ownAddresses();
    if (list !== this.ownList) {
      this.ownList = list;
      this.ownKeys = new Set();
      for (const text of list) {
        const own = parseIp(text);
        if (own) this.ownKeys.add(addressKey(unmapIPv4(own)));
      }
    }
    return this.ownKeys.has(addressKey(address));
  }

  /** One line for the exit's announcement and the directory (at most a few hundred characters). */
  summary(): string {
    const base = `default-deny local and private ranges; ports 1-65535 except ${formatRanges(this.deniedPorts)}`;
    const allowed = this.allow.length ? `; operator allows ${this.allow.map((c) => c.text).join(', ')}` : '';
    // The directory takes at most MAX_POLICY_LENGTH (512) characters.
    if (base.length + allowed.length <= 500) return base + allowed;
    return `${base.slice(0, 440)}${base.length > 440 ? '…' : ''}; operator allows ${this.allow.length} ranges`;
  }
}

const addressKey = (address: IpAddress): string => `${address.family}:${address.value.toString(16)}`;

function toRanges(sorted: number[]): PortRange[] {
  const ranges: [number, number][] = [];
  for (const port of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && port === last[1] + 1) last[1] = port;
    else ranges.push([port, port]);
  }
  return ranges;
}
