import { readMagnet, type MagnetLink } from '@underpass/shared/torrent';
import { MAX_TORRENT_FILE_BYTES } from './downloads-messages';

/**
 * Links from pages: the context-menu entry "Download with Underpass" on magnet and `.torrent` links opens the
 * Downloads page with the link in its fragment (`downloads.html#add=…`); the page reads it back, adds a magnet
 * at once and fetches a `.torrent` (bounded in size and time) to show its files. No content script runs in
 * anyone's pages for this: the browser's own menu finds the links.
 */

/** Which links the menu entry shows on (match patterns; `magnet:*` is accepted by Chromium and Firefox). */
export const TORRENT_LINK_PATTERNS = ['magnet:*', '*://*/*.torrent', '*://*/*.torrent?*'];

/** Longer than any link worth following; a magnet has its own, larger limit. */
export const MAX_TORRENT_URL_LENGTH = 2048;
/** A .torrent server that has not sent the whole file by then is not going to. */
export const TORRENT_FETCH_TIMEOUT_MS = 15_000;

export type TorrentLink =
  { kind: 'magnet'; magnet: MagnetLink; uri: string } | { kind: 'torrent-url'; url: string };

export type LinkCheck = { ok: true; link: TorrentLink } | { ok: false; reason: string };

/** A magnet, or an http(s) URL that may serve a .torrent (what the server sends decides). */
export function readLink(input: string): LinkCheck {
  const trimmed = input.trim();
  if (/^magnet:/i.test(trimmed)) {
    const read = readMagnet(trimmed);
    return read.ok
      ? { ok: true, link: { kind: 'magnet', magnet: read.magnet, uri: trimmed } }
      : { ok: false, reason: read.reason };
  }
  if (trimmed.length > MAX_TORRENT_URL_LENGTH)
    return { ok: false, reason: 'This link is too long to be a .torrent link.' };
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return { ok: false, reason: 'This is neither a magnet link nor a web link.' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return { ok: false, reason: 'A .torrent link starts with http:// or https://.' };
  return { ok: true, link: { kind: 'torrent-url', url: url.href } };
}

const ADD_PARAMETER = 'add';

/** The Downloads page's address that adds `link` when it opens (or when its fragment changes). */
export function downloadsPageUrl(pageUrl: string, link: string): string {
  return `${pageUrl}#${ADD_PARAMETER}=${encodeURIComponent(link)}`;
}

/** The link a Downloads page address carries in its fragment, if any. */
export function linkFromFragment(fragment: string): string | undefined {
  const params = new URLSearchParams(fragment.replace(/^#/, ''));
  const link = params.get(ADD_PARAMETER);
  return link && link.length > 0 ? link : undefined;
}

export type TorrentFetchProblem = 'timeout' | 'too-large' | 'http-status' | 'network';

export type TorrentFetchResult =
  { ok: true; bytes: Uint8Array; name: string } | { ok: false; problem: TorrentFetchProblem; detail: string };

export type TorrentFetchOptions = {
  fetch?: typeof fetch;
  timeoutMs?: number;
  maxBytes?: number;
};

/**
 * Fetches a linked .torrent as the browser would on a click (with the site's cookies, so a tracker's login
 * still counts), bounded: a declared or actual size over `maxBytes` stops the transfer, and so does
 * `timeoutMs` for the whole exchange, body included.
 */
export async function fetchTorrentFile(
  url: string,
  options: TorrentFetchOptions = {},
): Promise<TorrentFetchResult> {
  const maxBytes = options.maxBytes ?? MAX_TORRENT_FILE_BYTES;
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, options.timeoutMs ?? TORRENT_FETCH_TIMEOUT_MS);
  const failed = (problem: TorrentFetchProblem, detail: string): TorrentFetchResult => ({
    ok: false,
    problem,
    detail,
  });
  try {
    const response = await (options.fetch ?? fetch)(url, {
      signal: controller.signal,
      credentials: 'include',
      cache: 'no-store',
      redirect: 'follow',
    });
    if (!response.ok) return failed('http-status', `HTTP ${response.status}`);
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > maxBytes) {
      controller.abort();
      return failed('too-large', `${declared} bytes`);
    }
    const reader = response.body?.getReader();
    if (!reader) return failed('network', 'no body');
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        controller.abort();
        return failed('too-large', `more than ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
    const bytes = new Uint8Array(total);
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.length;
    }
    return { ok: true, bytes, name: fileNameOf(response, url) };
  } catch (error) {
    if (timedOut)
      return failed(
        'timeout',
        `no complete answer within ${options.timeoutMs ?? TORRENT_FETCH_TIMEOUT_MS} ms`,
      );
    return failed('network', error instanceof Error ? error.message : String(error));
  } finally {
    clearTimeout(timer);
  }
}

/** The name the server gives the file, else the last part of the URL's path. */
function fileNameOf(response: Response, url: string): string {
  const disposition = response.headers.get('content-disposition') ?? '';
  const quoted = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition)?.[1];
  let name = quoted ?? new URL(response.url || url).pathname.split('/').pop() ?? '';
  try {
    name = decodeURIComponent(name);
  } catch {
    // A name that is not valid percent-encoding is shown as it came.
  }
  return name.slice(0, 255) || 'download.torrent';
}
