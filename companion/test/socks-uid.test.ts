import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SocksServer } from '../src/socks-server.js';
import { procPeerUid } from '../src/peer-uid.js';
import { NoTunnelError } from '../src/socks-server.js';

const NOBODY = 65534;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function socks(): Promise<SocksServer> {
  const server = new SocksServer({ openStream: () => Promise.reject(new NoTunnelError()) });
  cleanups.push(() => server.close());
  await server.listen();
  return server;
}

/** Sends a SOCKS5 greeting as `uid` (a child process) and says what came back: the reply bytes, or 'reset'. */
function greetAs(port: number, uid: number | undefined): Promise<string> {
  const script = `
    const socket = require('node:net').connect(${port}, '127.0.0.1', () => socket.write(Buffer.from([5, 1, 0])));
    socket.on('data', (d) => { console.log(d.toString('hex')); process.exit(0); });
    socket.on('error', () => { console.log('reset'); process.exit(0); });
    socket.on('close', () => { console.log('reset'); process.exit(0); });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], uid === undefined ? {} : { uid, gid: uid });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', () => resolve(out.trim()));
  });
}

const linuxRoot = process.platform === 'linux' && process.getuid?.() === 0;

describe('the SOCKS port serves only its own user (Linux, owner from /proc/net/tcp)', () => {
  it.skipIf(process.platform !== 'linux')('finds the owner of a loopback connection', async () => {
    const server = await socks();
    const socket = connect(server.port, '127.0.0.1');
    cleanups.push(() => socket.destroy());
    await new Promise((resolve) => socket.once('connect', resolve));
    expect(await procPeerUid(socket.localPort!, server.port)).toBe(process.getuid!());
    expect(await procPeerUid(1, server.port)).toBeUndefined();
  });

  // Needs a second user: root here starts the child as nobody.
  it.skipIf(!linuxRoot)('resets a connection from another local user and serves its own', async () => {
    const server = await socks();
    expect(await greetAs(server.port, NOBODY)).toBe('reset');
    expect(server.stats().otherUser).toBe(1);
    expect(await greetAs(server.port, undefined)).toBe('0500');
  });
});
