import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { CHECK_PAGE_NAME, ExitSockets } from './check-page-dialer.js';

/** Connections the page serves at once: it is one small page for the person running `npm start`. */
const MAX_CONNECTIONS = 32;
/** Time a client has to send its request headers, and to finish the request. */
const HEADERS_TIMEOUT_MS = 10_000;

/** One request the page answered: what it judged, for the directions and the tests. */
export type CheckVisit = { throughUnderpass: boolean; sourceAddress: string };

export interface CheckPageOptions {
  /** The local address it listens on (default 127.0.0.1): only the exit's dialer connects to it there. */
  address?: string;
  /** 0 for any free port. */
  port: number;
  /** Filled by the exit's CheckPageDialer with the connections it opened to this page. */
  exitSockets: ExitSockets;
  /** The key of the exit the page is served through, shown on the page; undefined while it is not up. */
  exitKey: () => string | undefined;
}

export interface CheckPage {
  /** What to open in the protected browser: only the exit resolves the name. */
  readonly url: string;
  readonly address: string;
  readonly port: number;
  /** Every request answered, in order. */
  readonly visits: readonly CheckVisit[];
  close(): Promise<void>;
}

/**
 * `npm start`'s check page: a page that says whether the request reached it through Underpass — i.e. on a
 * connection the embedded exit opened (CheckPageDialer records each) — and which source address it saw, which
 * is what any website sees of a protected browser: the exit's address, never the browser's own.
 */
export async function startCheckPage(options: CheckPageOptions): Promise<CheckPage> {
  const address = options.address ?? '127.0.0.1';
  const visits: CheckVisit[] = [];
  const sockets = new Set<Socket>();

  const server = createServer((request, response) => {
    const visit: CheckVisit = {
      throughUnderpass: options.exitSockets.has(request.socket.remoteAddress, request.socket.remotePort),
      sourceAddress: request.socket.remoteAddress ?? 'unknown',
    };
    answer(request, response, visit, options.exitKey());
    if (request.method === 'GET' && pathOf(request) === '/') visits.push(visit);
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = HEADERS_TIMEOUT_MS;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          error.code === 'EADDRINUSE'
            ? `check page: port ${options.port} on ${address} is in use (set UNDERPASS_CHECK_PORT)`
            : `check page: cannot listen on ${address}:${options.port}: ${error.message}`,
        ),
      ),
    );
    server.listen(options.port, address, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://${CHECK_PAGE_NAME}:${port}/`,
    address,
    port,
    visits,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function pathOf(request: IncomingMessage): string {
  try {
    return new URL(request.url ?? '/', 'http://check.invalid').pathname;
  } catch {
    return '';
  }
}

function answer(
  request: IncomingMessage,
  response: ServerResponse,
  visit: CheckVisit,
  exitKey: string | undefined,
): void {
  // Never cached: a page saved from a protected visit must not answer for an unprotected one.
  const headers = { 'cache-control': 'no-store', 'content-type': 'text/plain; charset=utf-8' };
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { ...headers, allow: 'GET, HEAD' });
    response.end('Only GET and HEAD.\n');
    return;
  }
  const path = pathOf(request);
  if (path !== '/') {
    response.writeHead(404, headers);
    response.end('Not found: the check page is /\n');
    return;
  }
  response.writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8' });
  response.end(request.method === 'HEAD' ? undefined : page(visit, exitKey));
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(visit: CheckVisit, exitKey: string | undefined): string {
  const seen = escapeHtml(visit.sourceAddress);
  const verdict = visit.throughUnderpass
    ? `<h1 id="verdict" data-through="true">You reached this page through Underpass</h1>
<p>This request came through the tunnel: the exit node opened the connection it arrived on.</p>
<p>The site saw the address <code id="seen-address">${seen}</code>: the exit node's, not your browser's.
Here the exit runs on this machine, so that is a local address; a website on the internet sees the public
address of the machine the exit runs on.</p>
<p>Exit key: <code id="exit-key">${escapeHtml(exitKey ?? 'unknown')}</code></p>`
    : `<h1 id="verdict" data-through="false">This request did not come through Underpass</h1>
<p>The connection it arrived on was not opened by the exit node.</p>
<p>The site saw the address <code id="seen-address">${seen}</code>.</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Underpass check page</title></head>
<body>
${verdict}
<p>The name <code>${CHECK_PAGE_NAME}</code> is known only to the exit that <code>npm start</code> runs: with
Protect off, your browser cannot resolve it and this page does not load.</p>
</body></html>
`;
}
