import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { type StreamError } from '@underpass/shared/errors';
import { ExitPolicy } from '@underpass/shared/exit';
import { OwnAddresses } from '../src/own-addresses.js';
import { TcpDialer } from '../src/tcp-dialer.js';

/** This machine's interface addresses that the default ranges do not already deny (e.g. a public one). */
function ownPublicIPv4(): string | undefined {
  const bare = new ExitPolicy();
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      if (entry.family === 'IPv4' && bare.checkAddress(entry.address).allowed) return entry.address;
    }
  }
  return undefined;
}

/** A non-loopback, non-link-local IPv6 interface address, whatever its range (the operator will allow it). */
function ownIPv6(): string | undefined {
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) {
      if (entry.family === 'IPv6' && !entry.internal && !entry.address.toLowerCase().startsWith('fe80'))
        return entry.address;
    }
  }
  return undefined;
}

function listenOn(host: string): Promise<{ server: Server; port: number; accepted: () => number }> {
  let accepted = 0;
  const server = createServer((socket) => {
    accepted += 1;
    socket.destroy();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () =>
      resolve({ server, port: (server.address() as { port: number }).port, accepted: () => accepted }),
    );
  });
}

const outcome = (promise: Promise<{ destroy(): void }>) =>
  promise.then(
    (stream) => {
      stream.destroy();
      return 'connected';
    },
    (error: StreamError) => `${error.code}: ${error.message}`,
  );

describe("the exit never dials its own interface addresses (real TCP on this machine's interfaces)", () => {
  const v4 = ownPublicIPv4();
  const v6 = ownIPv6();
  const servers: Server[] = [];
  afterAll(() => Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve)))));

  beforeAll(() => {
    // The machine this runs on must have the addresses the probe used; say so rather than pass vacuously.
    expect(v4, 'an IPv4 interface address outside the default-denied ranges').toBeDefined();
  });

  const dialer = (
    allowDestinations: string[],
    lookup?: (host: string) => Promise<{ address: string; family: number }[]>,
  ) =>
    new TcpDialer({
      policy: new ExitPolicy({ allowDestinations, ownAddresses: new OwnAddresses().addresses }),
      ...(lookup ? { lookup } : {}),
    });

  it('refuses its own IPv4 address, by literal and by a name resolving to it', async () => {
    const site = await listenOn(v4!);
    servers.push(site.server);
    const policy = dialer([], async () => [{ address: v4!, family: 4 }]);
    expect(await outcome(policy.dial({ kind: 'tcp', host: v4!, port: site.port }))).toMatch(
      /^policy-denied: .*the exit's own address/,
    );
    expect(await outcome(policy.dial({ kind: 'tcp', host: 'me.test', port: site.port }))).toMatch(
      /^policy-denied: .*the exit's own address/,
    );
    expect(await outcome(policy.dial({ kind: 'tcp', host: `::ffff:${v4!}`, port: site.port }))).toMatch(
      /^policy-denied/,
    );
    expect(site.accepted()).toBe(0);
  });

  it.skipIf(v6 === undefined)(
    'refuses its own IPv6 address even inside a range the operator allowed',
    async () => {
      const site = await listenOn(v6!);
      servers.push(site.server);
      expect(await outcome(dialer([`${v6!}/64`]).dial({ kind: 'tcp', host: v6!, port: site.port }))).toMatch(
        /^policy-denied: .*the exit's own address/,
      );
      expect(site.accepted()).toBe(0);
    },
  );

  it('an exact allow-list entry for the address re-opens it (deliberate, as tests do for 127.0.0.1)', async () => {
    const site = await listenOn(v4!);
    servers.push(site.server);
    expect(await outcome(dialer([`${v4!}/32`]).dial({ kind: 'tcp', host: v4!, port: site.port }))).toBe(
      'connected',
    );
  });

  it('re-reads the interfaces at most once per refresh interval, and keeps the same list while unchanged', () => {
    let reads = 0;
    let now = 0;
    let addresses = ['192.0.2.10'];
    const own = new OwnAddresses({
      extra: ['198.51.100.1'],
      now: () => now,
      readInterfaces: () => {
        reads += 1;
        return {
          eth0: addresses.map((address) => ({
            address,
            netmask: '255.255.255.0',
            family: 'IPv4' as const,
            mac: '00:00:00:00:00:00',
            internal: false,
            cidr: `${address}/24`,
          })),
        };
      },
    });
    const first = own.addresses();
    expect(first).toEqual(['192.0.2.10', '198.51.100.1']);
    now = 1_999;
    expect(own.addresses()).toBe(first);
    expect(reads).toBe(1);
    now = 2_000;
    expect(own.addresses()).toBe(first); // read again, unchanged: the same array
    expect(reads).toBe(2);
    addresses = ['192.0.2.11'];
    now = 4_000;
    expect(own.addresses()).toEqual(['192.0.2.11', '198.51.100.1']);
  });
});
