import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';

/** Where ports are picked from: above the well-known and registered ports most daemons use. */
const LOWEST_PORT = 10_000;
/** Linux's default ephemeral range starts here; used where /proc cannot be read. */
const DEFAULT_EPHEMERAL_LOW = 32_768;
const ATTEMPTS = 64;

/**
 * A TCP port free on `host` right now, below the kernel's ephemeral range, for a server that must come back on
 * the same port after a restart (the chaos run's signaling servers, Redis). Why below the range: a port inside it
 * can be taken at any moment as the local end of an outgoing connection from that address. The chaos run in one
 * clean-clone CI lost its run to that: its signaling server's port, found free, had become the local port of a
 * connection to that same address by the time the server started ("EADDRINUSE"). Nothing takes a port below the
 * range unless it asks for that port. Another process may still ask for it first; the caller's server then
 * fails to start, loudly.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const ephemeralLow = await ephemeralRangeStart();
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const port = LOWEST_PORT + Math.floor(Math.random() * (ephemeralLow - LOWEST_PORT));
    if (await isFree(host, port)) return port;
  }
  throw new Error(`no free port on ${host} below ${ephemeralLow} after ${ATTEMPTS} tries`);
}

async function ephemeralRangeStart(): Promise<number> {
  const text = await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '');
  const low = Number(text.trim().split(/\s+/)[0]);
  return Number.isInteger(low) && low > LOWEST_PORT + ATTEMPTS ? low : DEFAULT_EPHEMERAL_LOW;
}

function isFree(host: string, port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}
