import { spawn, spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { ContactLog } from './contacts.js';
import type { SwarmContent } from './content.js';
import type { Seeder } from './seeder.js';

/** Why aria2 cannot seed here (it is not installed), or undefined when it can. `.ci/run` installs it. */
export function aria2Missing(): string | undefined {
  const probe = spawnSync('aria2c', ['--version'], { stdio: 'ignore' });
  return probe.error || probe.status !== 0 ? 'aria2c is not installed (Debian package aria2)' : undefined;
}

const STARTUP_TIMEOUT_MS = 10_000;

/**
 * aria2 (a BitTorrent client that is not WebTorrent) seeding the content over TCP from its own loopback
 * address, with no DHT, LPD or PEX. Every accepted connection is read back from its debug log ("Accepted
 * the connection from A:P"), the only place aria2 reports it.
 */
export async function startAria2Seeder(
  content: SwarmContent,
  address: string,
  contacts: ContactLog,
  workDir: string,
): Promise<Seeder> {
  const port = await freePort(address);
  const torrentPath = join(workDir, 'aria2.torrent');
  const logPath = join(workDir, 'aria2.log');
  await writeFile(torrentPath, content.torrentFile);
  await writeFile(logPath, '');
  const child = spawn(
    'aria2c',
    [
      `--dir=${content.dir}`,
      '--seed-ratio=0.0',
      '--bt-seed-unverified=true',
      '--enable-dht=false',
      '--enable-dht6=false',
      '--bt-enable-lpd=false',
      '--enable-peer-exchange=false',
      `--listen-port=${port}`,
      `--interface=${address}`,
      '--disable-ipv6=true',
      '--console-log-level=error',
      '--summary-interval=0',
      `--log=${logPath}`,
      '--log-level=debug',
      torrentPath,
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let offset = 0;
  const readLog = async () => {
    const text = (await readFile(logPath, 'utf8')).slice(offset);
    offset += text.length;
    for (const match of text.matchAll(/Accepted the connection from ([0-9.]+):\d+/g)) {
      contacts.record('aria2-seeder', match[1]);
    }
    return text;
  };
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  let seen = '';
  while (!/listening on TCP port/.test(seen)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`aria2c did not start listening (exit code ${child.exitCode})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    seen += await readLog();
  }
  return {
    name: 'aria2-seeder',
    address,
    port,
    refreshContacts: () => readLog().then(() => undefined),
    stop: async () => {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(killer);
      await readLog();
    },
  };
}

function freePort(address: string): Promise<number> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
