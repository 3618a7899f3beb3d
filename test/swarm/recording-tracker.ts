import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'bittorrent-tracker';
import type { ContactLog } from './contacts.js';

export interface RecordingTracker {
  address: string;
  httpUrl: string;
  udpUrl: string;
  /**
   * Registers a peer for `infoHash` as if it had announced itself. With `trustProxy` the peer may be any
   * address (sent as X-Forwarded-For: how a hostile tracker is made); otherwise the announce leaves from
   * `peer.address` itself, so the tracker records the address it saw.
   */
  plant(infoHash: string, peer: { address: string; port: number }): Promise<void>;
  close(): Promise<void>;
}

/** A bittorrent-tracker Server (HTTP and UDP) on one loopback address, recording every address that contacts it. */
export async function startTracker(
  address: string,
  contacts: ContactLog,
  options: { trustProxy?: boolean; name?: string } = {},
): Promise<RecordingTracker> {
  const name = options.name ?? 'tracker';
  const server = new Server({
    http: true,
    udp: true,
    ws: false,
    stats: false,
    trustProxy: options.trustProxy ?? false,
  });
  // udp6 on ::1 explicitly: the default (all interfaces) fails with EINVAL on an IPv4-only host.
  await new Promise<void>((resolve) =>
    server.listen(0, { http: address, udp: address, udp6: '::1' }, resolve),
  );
  server.http!.on('connection', (socket) => contacts.record(`${name}-http`, socket.remoteAddress));
  server.udp4!.on('message', (_message, remote) => contacts.record(`${name}-udp`, remote.address));
  server.on('warning', () => {}); // malformed announces are a test's business, not an unhandled event
  server.on('error', () => {});
  const httpPort = (server.http!.address() as AddressInfo).port;
  const udpPort = server.udp4!.address().port;
  const httpUrl = `http://${address}:${httpPort}/announce`;
  return {
    address,
    httpUrl,
    udpUrl: `udp://${address}:${udpPort}`,
    plant: (infoHash, peer) => {
      const query = new URLSearchParams({
        port: String(peer.port),
        uploaded: '0',
        downloaded: '0',
        left: '0',
        compact: '1',
        event: 'started',
      });
      const path = `/announce?info_hash=${percent(Buffer.from(infoHash, 'hex'))}&peer_id=${percent(Buffer.concat([Buffer.from('-UP0001-'), randomBytes(12)]))}&${query}`;
      return new Promise<void>((resolve, reject) => {
        const outgoing = request(
          {
            host: address,
            port: httpPort,
            path,
            ...(options.trustProxy
              ? { headers: { 'x-forwarded-for': peer.address } }
              : { localAddress: peer.address }),
          },
          (response) => {
            response.resume();
            response.on('end', () =>
              response.statusCode === 200 ? resolve() : reject(new Error(`announce: ${response.statusCode}`)),
            );
          },
        );
        outgoing.on('error', reject);
        outgoing.end();
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const percent = (bytes: Uint8Array) =>
  [...bytes].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');
