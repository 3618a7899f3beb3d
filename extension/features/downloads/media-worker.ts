import { OFFSCREEN_PATH } from '../../lib/offscreen-channel';
import {
  MEDIA_PATH_PREFIX,
  MEDIA_REFUSALS,
  MEDIA_REQUEST_TYPE,
  readMediaPath,
  type MediaRefusal,
  type MediaRequest,
} from './media-messages';
import { bodyFrom, headFrom, MEDIA_HEAD_TIMEOUT_MS } from './media-port';
import { MAX_RANGE_HEADER } from './media-range';

/**
 * The service worker's side of playing while downloading: the player's <video>/<audio> asks for
 * `/media/<infohash>/<file index>` (with a Range), and the worker hands the request to the engines' host,
 * where the torrents are (media-server.ts), then streams the bytes it sends back, pulled one chunk at a time
 * as the media element reads. Only the extension's own pages get an answer, and only for a media element
 * (never a navigation: the file must not open as a page). The worker checks the host's answer too: a head
 * inside the file, chunks that add up to exactly the promised length, or the response fails.
 */

/** The parts of a fetch's request the responder reads. */
export type MediaFetch = Pick<Request, 'url' | 'method' | 'mode' | 'destination' | 'headers'>;

/** The engines' host's document, as the worker sees it among its clients. */
export interface MediaHost {
  postMessage(message: MediaRequest, transfer: Transferable[]): void;
}

export type MediaResponderOptions = {
  /** The extension's own origin (`chrome-extension://<id>`). */
  origin: string;
  /** The URL of the page that made a request, if it is still there. */
  clientUrl(clientId: string): Promise<string | undefined>;
  /** The engines' host, if its document is open. */
  host(): Promise<MediaHost | undefined>;
  /** How long the host has to answer a request's head; default MEDIA_HEAD_TIMEOUT_MS. */
  headTimeoutMs?: number;
};

const MEDIA_DESTINATIONS: readonly string[] = ['video', 'audio'];

/** Answers the media requests it owns; undefined for every other request (the browser handles those). */
export function createMediaResponder(
  options: MediaResponderOptions,
): (request: MediaFetch, clientId: string) => Promise<Response> | undefined {
  return (request, clientId) => {
    const url = new URL(request.url);
    if (originOf(url) !== options.origin || !url.pathname.startsWith(MEDIA_PATH_PREFIX)) return undefined;
    return respond(options, request, clientId, url).catch(() => refusal('bad-answer'));
  };
}

async function respond(
  options: MediaResponderOptions,
  request: MediaFetch,
  clientId: string,
  url: URL,
): Promise<Response> {
  const target = readMediaPath(url.pathname);
  if (!target || url.search !== '') return refusal('no-file');
  if (request.method !== 'GET' && request.method !== 'HEAD') return refusal('bad-method');
  if (request.mode === 'navigate' || !MEDIA_DESTINATIONS.includes(request.destination))
    return refusal('forbidden');
  const pageUrl = clientId ? await options.clientUrl(clientId) : undefined;
  if (!pageUrl || originOf(new URL(pageUrl)) !== options.origin) return refusal('forbidden');

  const host = await options.host();
  if (!host) return refusal('downloads-off');
  const range = request.headers.get('range');
  const message: MediaRequest = {
    type: MEDIA_REQUEST_TYPE,
    ...target,
    method: request.method,
    ...(range !== null && range.length <= MAX_RANGE_HEADER ? { range } : {}),
  };
  const channel = new MessageChannel();
  const port = channel.port1;
  const head = await headFrom(port, options.headTimeoutMs ?? MEDIA_HEAD_TIMEOUT_MS, () =>
    host.postMessage(message, [channel.port2]),
  );
  if (!head) {
    port.close();
    return refusal('downloads-off');
  }
  if (head.type === 'refused') {
    port.close();
    return refusal(head.code, head.size);
  }
  const headers = new Headers({
    ...SAFE_HEADERS,
    'Content-Type': head.contentType,
    'Accept-Ranges': 'bytes',
    'Content-Length': String(head.end - head.start + 1),
  });
  if (head.partial) headers.set('Content-Range', `bytes ${head.start}-${head.end}/${head.size}`);
  const status = head.partial ? 206 : 200;
  if (request.method === 'HEAD' || head.end < head.start) {
    port.close();
    return new Response(null, { status, headers });
  }
  return new Response(bodyFrom(port, head.end - head.start + 1), { status, headers });
}

/**
 * scheme://host of a URL. Not `URL.origin`: outside Chrome (Node's URL, in tests) a chrome-extension: URL's
 * origin is opaque ("null"), which would equal every other opaque origin.
 */
function originOf(url: URL): string {
  return `${url.protocol}//${url.host}`;
}

/** Headers on every answer: nothing is cached, sniffed into something else, or run as a page. */
const SAFE_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': "default-src 'none'; sandbox",
};

const REFUSAL_WORDS: Record<MediaRefusal, string> = {
  forbidden: 'Only the extension’s player may read downloads.',
  'no-torrent': 'This torrent is not in your downloads.',
  'no-file': 'This torrent has no such file.',
  'bad-method': 'Only GET and HEAD are answered.',
  'not-media': 'This file is not audio or video.',
  'range-not-satisfiable': 'The range is outside the file.',
  'no-metadata': 'The torrent’s file list has not arrived yet.',
  'downloads-off': 'Downloads are not running.',
  'bad-answer': 'The downloads engine sent a malformed answer.',
};

function refusal(code: MediaRefusal, size?: number): Response {
  const headers = new Headers({ ...SAFE_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
  headers.set('X-Underpass-Error', code);
  if (code === 'range-not-satisfiable' && size !== undefined) headers.set('Content-Range', `bytes */${size}`);
  return new Response(REFUSAL_WORDS[code], { status: MEDIA_REFUSALS[code], headers });
}

/** The parts of the service worker's global scope the media responder uses (no WebWorker lib here). */
interface ServiceWorkerScope {
  readonly location: { readonly origin: string };
  readonly clients: {
    get(id: string): Promise<{ readonly url: string } | undefined>;
    matchAll(options: { type: 'window'; includeUncontrolled: boolean }): Promise<readonly WindowClient[]>;
  };
  addEventListener(type: 'fetch', listener: (event: FetchEvent) => void): void;
}
interface WindowClient extends MediaHost {
  readonly url: string;
}
interface FetchEvent {
  readonly request: Request;
  readonly clientId: string;
  respondWith(response: Promise<Response>): void;
}

/** Registers the worker's fetch handler for media requests (Chrome; call at the worker's first run). */
export function listenForMediaRequests(
  // The extension's TypeScript program has the DOM lib, not WebWorker's: this is the worker's `self`.
  scope = globalThis as unknown as ServiceWorkerScope,
): void {
  const origin = scope.location.origin;
  const hostUrl = `${origin}/${OFFSCREEN_PATH}`;
  const respond = createMediaResponder({
    origin,
    clientUrl: async (id) => (await scope.clients.get(id))?.url,
    host: async () =>
      (await scope.clients.matchAll({ type: 'window', includeUncontrolled: true })).find(
        (client) => client.url === hostUrl,
      ),
  });
  scope.addEventListener('fetch', (event) => {
    const response = respond(event.request, event.clientId);
    if (response) event.respondWith(response);
  });
}
