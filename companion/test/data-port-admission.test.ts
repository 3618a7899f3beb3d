import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { DataPort } from '../src/data-port.js';
import { ManualClock } from '../../test/manual-clock.js';
import { waitFor } from './helpers.js';

const ORIGIN = 'chrome-extension://abcdefghijklmnopabcdefghijklmnop';
const SECRET = 's'.repeat(43);
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function dataPort(options: Partial<ConstructorParameters<typeof DataPort>[0]> = {}): Promise<DataPort> {
  const port = new DataPort({ secret: SECRET, extensionOrigin: ORIGIN, ...options });
  cleanups.push(() => port.close());
  await port.listen();
  return port;
}

/** A local TCP connection that says nothing, as a hostile local process would hold it. */
function idle(port: number): Promise<Socket & { gone: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = Object.assign(connect({ host: '127.0.0.1', port }), { gone: false });
    cleanups.push(() => socket.destroy());
    socket.on('close', () => (socket.gone = true));
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve(socket));
    socket.once('close', () => reject(new Error('closed before it connected')));
  });
}

/** The extension: upgrade with its Origin, then the hello. Resolves once the companion has the tunnel. */
async function extensionGetsIn(port: DataPort): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${port.port}/`, { headers: { Origin: ORIGIN } });
  cleanups.push(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_request, response) => reject(new Error(`HTTP ${response.statusCode}`)));
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'hello', secret: SECRET }));
  await waitFor(() => port.tunnelUp, 'the tunnel');
}

describe('DataPort admission: idle local connections cannot hold the extension out (issue 12)', () => {
  it('40 idle TCP connections, then the extension: it gets in at once', async () => {
    // A long hello timeout: only giving way, not timing out, can let the extension in within the test.
    const port = await dataPort({ helloTimeoutMs: 60_000 });
    const idlers = await Promise.all(Array.from({ length: 40 }, () => idle(port.port)));
    await extensionGetsIn(port);
    // The oldest gave way; at most the bound of unauthenticated connections is still open.
    await waitFor(() => idlers.filter((s) => !s.gone).length <= 16, 'the oldest idle connections to go');
    expect(idlers.slice(0, 24).every((s) => s.gone)).toBe(true);
  });

  it('the oldest unauthenticated connection gives way to a new one', async () => {
    const port = await dataPort({ maxPending: 4, helloTimeoutMs: 60_000 });
    const first = await Promise.all(Array.from({ length: 4 }, () => idle(port.port)));
    await waitFor(() => port.unauthenticated === 4, 'four connections counted');
    expect(first.some((s) => s.gone)).toBe(false);
    const fifth = await idle(port.port);
    await waitFor(() => first[0]!.gone, 'the oldest to be closed');
    expect(first.slice(1).some((s) => s.gone)).toBe(false);
    expect(fifth.gone).toBe(false);
    expect(port.unauthenticated).toBe(4);
  });

  it('a connection that never authenticates is closed after the hello timeout, counted from its TCP connect', async () => {
    const clock = new ManualClock();
    const port = await dataPort({ helloTimeoutMs: 1_000, clock });
    const silent = await idle(port.port);
    await waitFor(() => port.unauthenticated === 1, 'the connection counted');
    clock.advance(999);
    expect(silent.gone).toBe(false);
    clock.advance(1);
    await waitFor(() => silent.gone, 'the silent connection to be closed');
    expect(port.unauthenticated).toBe(0);
  });

  it('the authenticated connection does not count against the bound and is never evicted', async () => {
    const port = await dataPort({ maxPending: 2, helloTimeoutMs: 60_000 });
    await extensionGetsIn(port);
    await Promise.all(Array.from({ length: 10 }, () => idle(port.port)));
    await waitFor(() => port.unauthenticated === 2, 'the bound kept');
    expect(port.tunnelUp).toBe(true);
  });
});
