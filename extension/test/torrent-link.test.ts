import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  downloadsPageUrl,
  fetchTorrentFile,
  linkFromFragment,
  readLink,
} from '../features/downloads/torrent-link';

/**
 * Links from pages: which links count, how the Downloads page's address carries one, and the bounded fetch of
 * a linked .torrent against a real HTTP server (sizes declared and not, a server that never finishes, errors).
 */

const INFO_HASH = '0123456789abcdef0123456789abcdef01234567';

describe('readLink', () => {
  it('takes a magnet (read as the host reads it) and an http(s) link', () => {
    const magnet = `magnet:?xt=urn:btih:${INFO_HASH}&dn=Film&tr=http%3A%2F%2Ftracker.example%2Fannounce&xs=http%3A%2F%2Fsrc.example%2Fx`;
    const read = readLink(`  ${magnet} `);
    expect(read).toMatchObject({
      ok: true,
      link: { kind: 'magnet', uri: magnet, magnet: { infoHash: INFO_HASH, name: 'Film' } },
    });
    expect(readLink('https://tracker.example/get/42.torrent?key=1')).toEqual({
      ok: true,
      link: { kind: 'torrent-url', url: 'https://tracker.example/get/42.torrent?key=1' },
    });
  });

  it('refuses other schemes, malformed magnets and links past the limit, with a reason', () => {
    for (const input of [
      'javascript:alert(1)',
      'file:///etc/passwd',
      'ftp://example.com/a.torrent',
      'not a link',
      'magnet:?xt=urn:sha1:abc',
      `https://example.com/${'a'.repeat(3000)}.torrent`,
    ]) {
      const read = readLink(input);
      expect(read.ok, input).toBe(false);
      if (!read.ok) expect(read.reason.length).toBeGreaterThan(0);
    }
  });
});

describe('the Downloads page address', () => {
  it('carries a link in its fragment and gives it back unchanged', () => {
    const page = 'chrome-extension://abc/downloads.html';
    for (const link of [
      `magnet:?xt=urn:btih:${INFO_HASH}&dn=a%20b&tr=udp%3A%2F%2Fx%3A1`,
      'https://e.example/a b.torrent?x=1&y=#z',
    ]) {
      const url = downloadsPageUrl(page, link);
      expect(url.startsWith(`${page}#add=`)).toBe(true);
      expect(linkFromFragment(new URL(url).hash)).toBe(link);
    }
    expect(linkFromFragment('')).toBeUndefined();
    expect(linkFromFragment('#other=1')).toBeUndefined();
    expect(linkFromFragment('#add=')).toBeUndefined();
  });
});

describe('fetchTorrentFile', () => {
  let server: Server;
  let base: string;
  const hanging: ServerResponse[] = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      const path = new URL(request.url ?? '/', 'http://x').pathname;
      if (path === '/ok.torrent') {
        response.writeHead(200, { 'content-type': 'application/x-bittorrent' });
        response.end(Buffer.from('d4:infod4:name1:aee'));
      } else if (path === '/named') {
        response.writeHead(200, { 'content-disposition': 'attachment; filename="Big Film.torrent"' });
        response.end('de');
      } else if (path === '/declared-large.torrent') {
        response.writeHead(200, { 'content-length': '5000' });
        response.end(Buffer.alloc(5000));
      } else if (path === '/streamed-large.torrent') {
        // No length declared: the reader must stop counting at the limit on its own.
        response.writeHead(200, { 'transfer-encoding': 'chunked' });
        for (let i = 0; i < 10; i += 1) response.write(Buffer.alloc(1000));
        response.end();
      } else if (path === '/never-ends.torrent') {
        response.writeHead(200, { 'content-length': '100' });
        response.write('d4:');
        hanging.push(response);
      } else {
        response.writeHead(404);
        response.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const response of hanging) response.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it('returns the bytes and the file name from the URL or the server', async () => {
    const ok = await fetchTorrentFile(`${base}/ok.torrent`);
    expect(ok).toMatchObject({ ok: true, name: 'ok.torrent' });
    if (ok.ok) expect(new TextDecoder().decode(ok.bytes)).toBe('d4:infod4:name1:aee');
    expect(await fetchTorrentFile(`${base}/named`)).toMatchObject({ ok: true, name: 'Big Film.torrent' });
  });

  it('stops at the size limit, declared or counted', async () => {
    expect(await fetchTorrentFile(`${base}/declared-large.torrent`, { maxBytes: 4096 })).toMatchObject({
      ok: false,
      problem: 'too-large',
    });
    expect(await fetchTorrentFile(`${base}/streamed-large.torrent`, { maxBytes: 4096 })).toMatchObject({
      ok: false,
      problem: 'too-large',
    });
  });

  it('gives up on a server that never finishes, and says what an HTTP error or a refused connection was', async () => {
    expect(await fetchTorrentFile(`${base}/never-ends.torrent`, { timeoutMs: 300 })).toMatchObject({
      ok: false,
      problem: 'timeout',
    });
    expect(await fetchTorrentFile(`${base}/missing.torrent`)).toMatchObject({
      ok: false,
      problem: 'http-status',
      detail: 'HTTP 404',
    });
    expect(await fetchTorrentFile('http://127.0.0.1:1/a.torrent')).toMatchObject({
      ok: false,
      problem: 'network',
    });
  });
});
