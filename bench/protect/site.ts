import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** How many subresources the benchmark page pulls in (the "a local page with 50 resources"). */
export const RESOURCES = 50;

export type BenchSite = {
  /** On 127.0.0.1: the client reaches it through the tunnel (loopback routed, for the benchmark). */
  url: string;
  port: number;
  /** The same site on 127.0.0.2, which the client's options list as a site that bypasses the tunnel. */
  bypassUrl: string;
  /** Every request served to `address` (the exit's), with when its first byte was written. */
  firstByteFrom(address: string, since: number): number | undefined;
  /** Every page request served since `since`: who asked, and when. */
  servedSince(since: number): { address: string; at: number }[];
  close(): Promise<void>;
};

type Served = { address: string; at: number };

function page(): string {
  const items: string[] = [];
  for (let i = 0; i < RESOURCES; i += 1) {
    // A mix of kinds, each a separate request: stylesheets, scripts and images.
    if (i % 3 === 0) items.push(`<link rel="stylesheet" href="/r/${i}.css">`);
    else if (i % 3 === 1) items.push(`<script src="/r/${i}.js"></script>`);
    else items.push(`<img alt="" src="/r/${i}.svg" width="8" height="8">`);
  }
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bench</title></head>
<body><h1 id="greeting">bench</h1>${items.join('\n')}</body></html>`;
}

const BODY_BYTES = 4 * 1024;
const filler = (char: string) => char.repeat(BODY_BYTES);
const TYPES: Record<string, { type: string; body: string }> = {
  css: { type: 'text/css', body: `/*${filler('c')}*/` },
  js: { type: 'text/javascript', body: `/*${filler('j')}*/` },
  svg: {
    type: 'image/svg+xml',
    body: `<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><!--${filler('s')}--></svg>`,
  },
};

export const BYPASS_HOST = '127.0.0.2';

/** The benchmark's website on 127.0.0.1 and 127.0.0.2: a page with RESOURCES subresources, nothing cacheable. */
export async function startBenchSite(): Promise<BenchSite> {
  const served: Served[] = [];
  const sockets = new Set<Socket>();
  const html = page();
  const serve = (request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? '/', 'http://bench.invalid').pathname;
    const record = () => served.push({ address: request.socket.remoteAddress ?? '', at: performance.now() });
    const headers = { 'cache-control': 'no-store' };
    if (path === '/' || path === '/index.html') {
      record();
      response.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' });
      response.end(html);
      return;
    }
    const match = /^\/r\/\d+\.(css|js|svg)$/.exec(path);
    const kind = match ? TYPES[match[1]!] : undefined;
    if (kind) {
      response.writeHead(200, { ...headers, 'content-type': kind.type });
      response.end(kind.body);
      return;
    }
    response.writeHead(404, headers);
    response.end();
  };
  const listen = async (host: string): Promise<Server> => {
    const server = createServer(serve);
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    return server;
  };
  const servers = [await listen('127.0.0.1'), await listen(BYPASS_HOST)];
  const [port, bypassPort] = servers.map((server) => (server.address() as AddressInfo).port);
  return {
    url: `http://127.0.0.1:${port}`,
    port: port!,
    bypassUrl: `http://${BYPASS_HOST}:${bypassPort}`,
    servedSince: (since) => served.filter((s) => s.at >= since),
    firstByteFrom: (address, since) => served.find((s) => s.address === address && s.at >= since)?.at,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    },
  };
}
