import dgram from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns/promises';
import type { Lookup } from '../tcp-dialer.js';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import {
  ALWAYS_DENIED_PORTS,
  parseIp,
  unmapIPv4,
  type ExitPolicy,
  type PolicyDecision,
  type PortRange,
} from '@underpass/shared/exit';

/**
 * Ports the torrent service never dials, for peers, trackers and DHT nodes alike: everything under 1024 but
 * the web's 80 and 443 (trackers live there). A hostile tracker or DHT node can name any port; the well-known
 * ones are where services that are not BitTorrent listen (SSH, SMTP, DNS...), and BitTorrent itself uses
 * high ports. This is a separate rule from the `tcp` streams' port policy, whose default denies 6881-6999 —
 * where most of the swarm lives.
 */
export const DEFAULT_TORRENT_DENIED_PORTS: readonly PortRange[] = [
  [1, 79],
  [81, 442],
  [444, 1023],
];

/** Where a refused connection came from: counted per layer in the service's metrics. */
export type PolicyLayer = 'peer' | 'http-tracker' | 'udp-tracker' | 'tracker-url' | 'dht';

export interface TorrentPolicyOptions {
  /** The exit's address policy (ranges, the operator's `--allow-destination`); its port list is not used. */
  policy: ExitPolicy;
  /** The exit's bind address: never a destination, and the source of every socket when set. */
  bindAddress?: string;
  /** Further addresses of this exit (a public address behind NAT...). Interface addresses are added. */
  ownAddresses?: readonly string[];
  deniedPorts?: readonly PortRange[];
  lookup?: Lookup;
  /** Told of every refusal (no address: counted, not logged). */
  onDenied?: (layer: PolicyLayer, reason: string) => void;
}

/**
 * The exit's address policy as it applies to the torrent service: every destination it would contact —
 * a peer from a tracker, the DHT, PEX or a magnet's x.pe, a tracker after DNS, a DHT node — passes `check`,
 * which refuses what ExitPolicy refuses, the exit's own addresses, names that are not IP literals, and the
 * torrent port rule.
 */
export class TorrentPolicy {
  private readonly own = new Set<string>();
  private readonly deniedPorts: readonly PortRange[];
  private readonly lookup: Lookup;

  constructor(private readonly options: TorrentPolicyOptions) {
    for (const list of Object.values(networkInterfaces())) {
      for (const entry of list ?? []) this.addOwn(entry.address);
    }
    if (options.bindAddress) this.addOwn(options.bindAddress);
    for (const address of options.ownAddresses ?? []) this.addOwn(address);
    this.deniedPorts = options.deniedPorts ?? DEFAULT_TORRENT_DENIED_PORTS;
    this.lookup = options.lookup ?? ((host) => dnsLookup(host, { all: true, verbatim: true }));
  }

  /** May the service contact `address` (an IP literal) on `port`? */
  check(address: string, port?: number): PolicyDecision {
    const bare = unbracket(address);
    const key = addressKey(bare);
    if (!isIP(bare) || key === undefined) return { allowed: false, reason: 'not an IP address' };
    const decision = this.options.policy.checkAddress(bare);
    if (!decision.allowed) return decision;
    if (this.own.has(key)) return { allowed: false, reason: "the exit's own address" };
    if (port !== undefined) return this.checkPort(port);
    return { allowed: true };
  }

  checkPort(port: number): PolicyDecision {
    if (!Number.isInteger(port) || port < 1 || port > 65535) return { allowed: false, reason: 'bad port' };
    if (ALWAYS_DENIED_PORTS.includes(port))
      return { allowed: false, reason: `port ${port} is never allowed` };
    if (this.deniedPorts.some(([first, last]) => port >= first && port <= last)) {
      return { allowed: false, reason: `port ${port} is denied by the torrent port rule` };
    }
    return { allowed: true };
  }

  private addOwn(address: string): void {
    const key = addressKey(unbracket(address));
    if (key !== undefined) this.own.add(key);
  }

  /** `check`, counting a refusal under `layer`. */
  allows(layer: PolicyLayer, address: string, port?: number): boolean {
    const decision = this.check(address, port);
    if (!decision.allowed) this.options.onDenied?.(layer, decision.reason);
    return decision.allowed;
  }

  /**
   * The first allowed address a name (or literal) resolves to, else a rejection: the policy judges what the
   * resolver returned, and the caller dials only that address (no second lookup, no DNS rebinding).
   */
  async resolve(layer: PolicyLayer, host: string, port: number | undefined, family?: 4 | 6): Promise<string> {
    const bare = unbracket(host);
    const candidates = isIP(bare) ? [bare] : (await this.lookup(bare)).map((entry) => entry.address);
    let reason = 'no address';
    for (const address of candidates) {
      if (family && isIP(address) !== family) continue;
      const decision = this.check(address, port);
      if (decision.allowed) return address;
      reason = decision.reason;
    }
    this.options.onDenied?.(layer, reason);
    throw new Error(`policy-denied: ${reason}`);
  }

  /**
   * A magnet's tracker list as the exit will use it: http(s) kept (the HTTP agent checks every connection,
   * redirects included), udp resolved and checked now and rewritten to the address (announced to by
   * UdpAnnouncer, whose socket vets every send again), WebSocket trackers dropped (they introduce WebRTC peers, which the exit does not
   * speak), anything else dropped, as is a protocol the caller does not use (`allow`).
   */
  async filterTrackers(
    urls: readonly string[],
    allow: { http: boolean; udp: boolean },
  ): Promise<{ kept: string[]; dropped: string[] }> {
    const kept: string[] = [];
    const dropped: string[] = [];
    for (const text of urls) {
      const url = URL.canParse(text) ? new URL(text) : undefined;
      if ((url?.protocol === 'http:' || url?.protocol === 'https:') && allow.http) {
        kept.push(url.href);
        continue;
      }
      if (url?.protocol === 'udp:' && allow.udp) {
        const port = Number(url.port) || 80;
        try {
          const address = await this.resolve('udp-tracker', url.hostname, port, 4);
          kept.push(`udp://${address}:${port}${url.pathname === '/' ? '' : url.pathname}`);
          continue;
        } catch {
          // refused or unresolvable: dropped below
        }
      } else {
        this.options.onDenied?.('tracker-url', `${url?.protocol ?? 'unparsable'} tracker not used`);
      }
      dropped.push(text);
    }
    return { kept: [...new Set(kept)], dropped };
  }

  /**
   * A UDP socket (for the DHT, for UDP trackers) whose every send is judged: Node calls a custom `lookup` for
   * each send, IP literals included, so a refused destination fails that one send. Bound to the exit's
   * address whatever the caller asks for (bittorrent-dht binds with no address).
   */
  udpSocket(layer: 'dht' | 'udp-tracker'): dgram.Socket {
    const bindAddress = this.options.bindAddress;
    let binding = false; // dgram also asks `lookup` for the bind address, synchronously inside bind()
    const socket = dgram.createSocket({
      type: 'udp4',
      lookup: (hostname, _options, callback) => {
        if (binding && hostname === bindAddress) return callback(null, hostname, 4);
        // The destination port is not passed to lookup: the address rule is what guards the exit's network
        // here (a UDP tracker's port was judged when its URL was).
        this.resolve(layer, hostname, undefined, 4).then(
          (address) => callback(null, address, 4),
          (error: Error) => callback(error, '', 4),
        );
      },
    });
    const bind = socket.bind.bind(socket) as (options: dgram.BindOptions, callback?: () => void) => void;
    const forcedBind = (...args: unknown[]) => {
      const port = typeof args[0] === 'number' ? args[0] : 0;
      const callback = args.find((arg): arg is () => void => typeof arg === 'function');
      binding = true;
      try {
        bind({ port, ...(bindAddress ? { address: bindAddress } : {}) }, callback);
      } finally {
        binding = false;
      }
      return socket;
    };
    Object.assign(socket, { bind: forcedBind });
    return socket;
  }
}

function unbracket(host: string): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const zone = bare.indexOf('%');
  return zone === -1 ? bare : bare.slice(0, zone);
}

/** One key per address whatever its spelling (IPv6 zero runs, IPv4-mapped IPv6 as IPv4). */
function addressKey(address: string): string | undefined {
  const parsed = parseIp(address);
  if (!parsed) return undefined;
  const unmapped = unmapIPv4(parsed);
  return `${unmapped.family}/${unmapped.value}`;
}
