/**
 * The website of the WAN benchmark, in its own namespace: `/` a small page, `/stream` bytes for as long as the
 * client reads (a download measured by time, not size: ≥ 30 s at 100 Mbit/s is more than any file we would
 * keep in memory), `/r/<n>` one of the page's resources (RESOURCE_BYTES each). HTTP/1.0, the connection closes
 * after each response, as the benchmark's client expects.
 */
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { deterministicBytes } from '../../test/http-site.js';
import { serve } from './serve.js';

export const SITE_PORT = 8080;
/** One of the page load's resources: a mid-sized image or script. */
export const RESOURCE_BYTES = 20_000;
const CHUNK = deterministicBytes(64 * 1024);
const RESOURCE = deterministicBytes(RESOURCE_BYTES, 7);
const PAGE = '<!doctype html><title>Underpass WAN bench</title><h1>Hello</h1>\n';

let server: Server | undefined;
const sockets = new Set<Socket>();

function start(host: string): Promise<void> {
  server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://site.invalid').pathname;
    if (path === '/') {
      response.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
    } else if (path === '/stream') {
      response.writeHead(200, { 'content-type': 'application/octet-stream' });
      // Backpressure: write while the socket takes it, resume on drain, stop when the client goes.
      const pump = () => {
        while (!response.destroyed && response.write(CHUNK));
      };
      response.on('drain', pump);
      pump();
    } else if (/^\/r\/\d{1,4}$/.test(path)) {
      response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(RESOURCE);
    } else {
      response.writeHead(404).end();
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return new Promise((resolve, reject) => {
    server!.once('error', reject);
    server!.listen(SITE_PORT, host, () => resolve());
  });
}

serve({
  start: (host: string) => start(host),
  /** Connections open now: none should outlive the download that opened them. */
  connections: () => sockets.size,
});
