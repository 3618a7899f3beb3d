import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';

/**
 * A local website for integration and e2e tests: a page, a deterministic file, and a record of the source
 * address of every TCP connection it accepted (the trust table says it must see only the exit's).
 */
export interface TestSite {
  url: string;
  port: number;
  host: string;
  fileBytes: Buffer;
  fileSha256: string;
  remoteAddresses: string[];
  close(): Promise<void>;
}

export function deterministicBytes(length: number): Buffer {
  const out = Buffer.alloc(length);
  let x = 0x12345678;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

export async function startTestSite(options: { host?: string; fileSize?: number } = {}): Promise<TestSite> {
  const host = options.host ?? '127.0.0.1';
  const fileBytes = deterministicBytes(options.fileSize ?? 5 * 1024 * 1024);
  const remoteAddresses: string[] = [];
  const server: Server = createServer((request, response) => {
    if (request.url === '/file.bin') {
      response.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': fileBytes.length,
      });
      response.end(fileBytes);
      return;
    }
    if (request.url === '/' || request.url === '/index.html') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      response.end(
        '<!doctype html><title>Underpass test site</title><h1 id="hello">Hello through Underpass</h1>',
      );
      return;
    }
    response.writeHead(404).end();
  });
  server.on('connection', (socket) => remoteAddresses.push(socket.remoteAddress ?? 'unknown'));
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}`,
    port,
    host,
    fileBytes,
    fileSha256: createHash('sha256').update(fileBytes).digest('hex'),
    remoteAddresses,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
