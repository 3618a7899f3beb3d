import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * The local website of the integration tests, the e2e tests and the benchmarks: a page, a deterministic file,
 * and a record of the source address of every TCP connection it accepted — the witness of where traffic came
 * from (the trust table says it must see only the exit's address).
 */
export interface TestSite {
  url: string;
  port: number;
  host: string;
  /** sha256 (hex) of /file.bin. */
  fileSha256: string;
  fileSize: number;
  /** The source address of every TCP connection accepted, in order. */
  readonly remoteAddresses: readonly string[];
  close(): Promise<void>;
}

export const DEFAULT_FILE_SIZE = 5 * 1024 * 1024;

/** Deterministic bytes (an xorshift stream), so a corrupted or truncated transfer cannot match by luck. */
export function deterministicBytes(size: number, seed = 0x2545f491): Buffer {
  const out = Buffer.alloc(Math.ceil(size / 4) * 4);
  let x = seed >>> 0;
  for (let i = 0; i < out.length; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  return out.subarray(0, size);
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Underpass test site</title></head>
<body><h1 id="greeting">Hello through the tunnel</h1></body></html>`;

export async function startTestSite(options: { host?: string; fileSize?: number } = {}): Promise<TestSite> {
  const host = options.host ?? '127.0.0.1';
  const file = deterministicBytes(options.fileSize ?? DEFAULT_FILE_SIZE);
  const fileSha256 = createHash('sha256').update(file).digest('hex');
  const remoteAddresses: string[] = [];
  const sockets = new Set<Socket>();

  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://website.invalid').pathname;
    if (path === '/' || path === '/index.html') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      response.end(PAGE);
    } else if (path === '/file.bin') {
      response.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(file.length),
        'cache-control': 'no-store',
      });
      response.end(file);
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' });
      response.end('not found');
    }
  });
  server.on('connection', (socket) => {
    remoteAddresses.push(socket.remoteAddress ?? 'unknown');
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    port,
    host,
    fileSha256,
    fileSize: file.length,
    remoteAddresses,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
