import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import { type StreamError } from '@underpass/shared/errors';
import { ExitPolicy } from '@underpass/shared/exit';
import { MAX_DATA_PAYLOAD } from '@underpass/shared/tunnel';
import { TcpDialer, type Lookup } from '../src/tcp-dialer.js';

/** Every name resolves here, in memory: no test query leaves the machine. */
const names: Record<string, { address: string; family: number }[] | NodeJS.ErrnoException> = {
  'site.test': [{ address: '127.0.0.3', family: 4 }],
  'mixed.test': [
    { address: '127.0.0.1', family: 4 },
    { address: '127.0.0.3', family: 4 },
  ],
  'v6only.test': [{ address: '::1', family: 6 }],
  'nowhere.test': Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }),
  'empty.test': [],
};
const lookup: Lookup = async (host) => {
  const answer = names[host];
  if (answer === undefined || answer instanceof Error) throw answer ?? new Error('ENOTFOUND');
  return answer;
};

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => 'connected',
    (error: StreamError) => error.code,
  );

describe('TcpDialer (real TCP on loopback)', () => {
  let server: Server;
  let port: number;
  const seen: string[] = [];

  beforeAll(async () => {
    server = createServer((socket) => {
      socket.on('error', () => undefined); // the dialer's side may reset it
      seen.push(socket.remoteAddress ?? '?');
      socket.end('hello');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.3', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const dialer = (options: { bindAddress?: string } = {}) =>
    new TcpDialer({ policy: new ExitPolicy({ allowDestinations: ['127.0.0.3/32'] }), lookup, ...options });

  it('connects to an allowed address from the bind address', async () => {
    const stream = await dialer({ bindAddress: '127.0.0.6' }).dial({ kind: 'tcp', host: 'site.test', port });
    const data = await new Promise<string>((resolve) => {
      stream.on('data', (chunk) => resolve(Buffer.from(chunk).toString()));
      stream.resume();
    });
    expect(data).toBe('hello');
    stream.destroy();
    expect(seen).toContain('127.0.0.6');
  });

  it('skips a forbidden address among the answers and dials only the allowed one', async () => {
    const stream = await dialer().dial({ kind: 'tcp', host: 'mixed.test', port });
    stream.destroy();
  });

  it('answers each failure with its typed code', async () => {
    const free = await new Promise<number>((resolve) => {
      const probe = createServer();
      probe.listen(0, '127.0.0.3', () => {
        const p = (probe.address() as { port: number }).port;
        probe.close(() => resolve(p));
      });
    });
    expect(await failure(dialer().dial({ kind: 'tcp', host: '127.0.0.3', port: free }))).toBe('refused');
    expect(await failure(dialer().dial({ kind: 'tcp', host: 'nowhere.test', port }))).toBe('dns-failed');
    expect(await failure(dialer().dial({ kind: 'tcp', host: 'empty.test', port }))).toBe('dns-failed');
    expect(await failure(dialer().dial({ kind: 'tcp', host: 'v6only.test', port }))).toBe('policy-denied');
    expect(await failure(dialer().dial({ kind: 'tcp', host: '127.0.0.3', port: 25 }))).toBe('policy-denied');
    expect(await failure(dialer().dial({ kind: 'tcp', host: '127.0.0.3', port: 137 }))).toBe('policy-denied');
  });

  it('says unreachable when every allowed address is of another family than the bind address', async () => {
    const v6 = new TcpDialer({
      policy: new ExitPolicy({ allowDestinations: ['127.0.0.3/32'] }),
      lookup,
      bindAddress: '::1',
    });
    expect(await failure(v6.dial({ kind: 'tcp', host: 'site.test', port }))).toBe('unreachable');
  });

  it('reads at most one DATA frame at a time, and small reads hold only their own bytes', async () => {
    const body = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >> 11)) & 0xff;
    let flushed!: () => void;
    const firstWriteFlushed = new Promise<void>((resolve) => (flushed = resolve));
    const big = createServer((socket) => {
      // What the first write hands the kernel is waiting when the dialer resumes: its first read is full.
      socket.write(body.subarray(0, 256 * 1024), () => flushed());
      socket.end(body.subarray(256 * 1024));
    });
    await new Promise<void>((resolve) => big.listen(0, '127.0.0.3', resolve));
    const bigPort = (big.address() as { port: number }).port;
    const stream = await dialer().dial({ kind: 'tcp', host: '127.0.0.3', port: bigPort });
    try {
      await firstWriteFlushed;
      const chunks: Uint8Array[] = [];
      await new Promise<void>((resolve) => {
        stream.on('data', (chunk) => chunks.push(chunk));
        stream.on('end', resolve);
        stream.resume();
      });
      expect(Buffer.concat(chunks).equals(body)).toBe(true);
      expect(chunks[0]!.byteLength).toBe(MAX_DATA_PAYLOAD);
      expect(Math.max(...chunks.map((c) => c.byteLength))).toBe(MAX_DATA_PAYLOAD);
      const small = chunks.filter((c) => c.byteLength < MAX_DATA_PAYLOAD / 2);
      for (const chunk of small) expect(chunk.buffer.byteLength).toBeLessThan(MAX_DATA_PAYLOAD);
    } finally {
      stream.destroy();
      await new Promise<void>((resolve) => big.close(() => resolve()));
    }
  });

  it('hands a small reply over in a buffer of its own size', async () => {
    const stream = await dialer().dial({ kind: 'tcp', host: 'site.test', port });
    const chunk = await new Promise<Uint8Array>((resolve) => {
      stream.on('data', resolve);
      stream.resume();
    });
    expect(Buffer.from(chunk).toString()).toBe('hello');
    expect(chunk.buffer.byteLength).toBeLessThan(MAX_DATA_PAYLOAD);
    stream.destroy();
  });
});
