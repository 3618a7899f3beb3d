import type { Server } from 'node:net';
import WebTorrent from 'webtorrent';
import { ISOLATED_CLIENT_OPTIONS } from '@underpass/shared/torrent';
import type { ContactLog } from './contacts.js';
import type { SwarmContent } from './content.js';
import type { Seeder } from './seeder.js';

/**
 * A Node WebTorrent seeding the content over TCP from its own loopback address, finding no one by itself
 * (the swarm's tracker knows it), and recording every connection to it.
 */
export async function startWebTorrentSeeder(
  content: SwarmContent,
  address: string,
  contacts: ContactLog,
): Promise<Seeder> {
  const client = new WebTorrent({ ...ISOLATED_CLIENT_OPTIONS, torrentPort: { port: 0, host: address } });
  client.on('error', () => {});
  await new Promise<void>((resolve) => client.once('listening', () => resolve()));
  // WebTorrent's listener is internal; its connection event is the only place every contact shows.
  const listener = (client as unknown as { _connPool: { tcpServer: Server } })._connPool.tcpServer;
  listener.on('connection', (socket) => contacts.record('webtorrent-seeder', socket.remoteAddress));
  const torrent = client.add(content.torrentFile, { path: content.dir, announce: [] });
  // The files are already there: WebTorrent verifies them and is a seed.
  await new Promise<void>((resolve, reject) => {
    torrent.once('done', () => resolve());
    torrent.once('error', (error) => reject(error instanceof Error ? error : new Error(error)));
  });
  return {
    name: 'webtorrent-seeder',
    address,
    port: client.address()!.port,
    refreshContacts: () => Promise.resolve(),
    stop: () => new Promise<void>((resolve) => client.destroy(() => resolve())),
  };
}
