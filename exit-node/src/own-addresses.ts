import { networkInterfaces } from 'node:os';

/** How long a reading of the interfaces is trusted: an address added since is denied within this time. */
export const DEFAULT_OWN_ADDRESSES_REFRESH_MS = 2_000;

export interface OwnAddressesOptions {
  /** Addresses that are the exit's though no interface shows them: the bind address, a public address behind NAT. */
  extra?: readonly string[];
  refreshMs?: number;
  /** Injected for tests. */
  readInterfaces?: typeof networkInterfaces;
  now?: () => number;
}

/**
 * The exit host's own addresses, for the exit policy (ExitPolicyOptions.ownAddresses): every address of every
 * interface, re-read at most once per `refreshMs` (one getifaddrs call; the policy asks on every check), so
 * an address that appears later (DHCP, a VPN coming up) is denied too. The same array is returned while the
 * addresses are unchanged, which lets the policy keep its parsed set.
 */
export class OwnAddresses {
  private list: readonly string[] = [];
  private readAt = -Infinity;
  private readonly refreshMs: number;
  private readonly read: typeof networkInterfaces;
  private readonly now: () => number;

  constructor(private readonly options: OwnAddressesOptions = {}) {
    this.refreshMs = options.refreshMs ?? DEFAULT_OWN_ADDRESSES_REFRESH_MS;
    this.read = options.readInterfaces ?? networkInterfaces;
    this.now = options.now ?? (() => performance.now());
  }

  /** The addresses now (arrow: handed to the policy as is). */
  readonly addresses = (): readonly string[] => {
    const now = this.now();
    if (now - this.readAt < this.refreshMs) return this.list;
    this.readAt = now;
    const fresh = [...(this.options.extra ?? [])];
    for (const entries of Object.values(this.read())) {
      for (const entry of entries ?? []) fresh.push(entry.address);
    }
    fresh.sort();
    const same = fresh.length === this.list.length && fresh.every((address, i) => address === this.list[i]);
    if (!same) this.list = fresh;
    return this.list;
  };
}
