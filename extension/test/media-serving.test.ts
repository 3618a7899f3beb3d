import { afterEach, describe, expect, it } from 'vitest';
import { MEDIA_REQUEST_TYPE, mediaPath, type MediaRequest } from '../features/downloads/media-messages';
import {
  startMediaServer,
  type MediaRequestSource,
  type MediaServer,
} from '../features/downloads/media-server';
import { createMediaResponder, type MediaFetch, type MediaHost } from '../features/downloads/media-worker';
import { bytesOf, DownloadingFile, FakeTorrent, PIECE } from './media-fakes';

/**
 * The worker's media responder and the engines' host's media server, joined by real MessageChannels as in
 * the browser, serving a torrent whose pieces arrive while it is read. The torrent is a stand-in for
 * WebTorrent's (its file iterator waits for pieces the way WebTorrent's does, and like WebTorrent's it reads
 * past a range's end of 0); everything between the request and the response bytes is the real code.
 */

const ORIGIN = 'chrome-extension://abcdefghijklmnopabcdefghijklmnop';
const PLAYER = `${ORIGIN}/player.html?infoHash=x&file=0`;
const INFO_HASH = 'a'.repeat(40);

type Setup = {
  server: MediaServer;
  torrent: FakeTorrent;
  video: DownloadingFile;
  fetch(options?: Partial<MediaFetch> & { path?: string; clientUrl?: string }): Promise<Response>;
};

const servers: MediaServer[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.stop();
});

function setup(options: { maxStreams?: number; host?: MediaHost | 'none' } = {}): Setup {
  const video = new DownloadingFile('clip/video.webm', bytesOf(5 * PIECE + 123));
  const notes = new DownloadingFile('clip/notes.html', bytesOf(100));
  notes.download(100);
  const torrent = new FakeTorrent([video, notes]);
  const source = new EventTarget() as EventTarget & MediaRequestSource;
  const server = startMediaServer({
    torrentOf: (infoHash) => (infoHash === INFO_HASH ? torrent : undefined),
    source,
    origin: ORIGIN,
    ...(options.maxStreams ? { maxStreams: options.maxStreams } : {}),
  });
  servers.push(server);
  const offscreen: MediaHost = {
    postMessage: (message: MediaRequest, transfer: Transferable[]) =>
      source.dispatchEvent(
        new MessageEvent('message', { data: message, origin: ORIGIN, ports: transfer as MessagePort[] }),
      ),
  };
  const fetch = (request: Partial<MediaFetch> & { path?: string; clientUrl?: string } = {}) => {
    let clientUrl: string | undefined = PLAYER;
    if ('clientUrl' in request) clientUrl = request.clientUrl;
    const respond = createMediaResponder({
      origin: ORIGIN,
      clientUrl: (id) => Promise.resolve(id === 'player' ? clientUrl : undefined),
      host: () => Promise.resolve(options.host === 'none' ? undefined : (options.host ?? offscreen)),
      headTimeoutMs: 200,
    });
    const response = respond(
      {
        url: `${ORIGIN}${request.path ?? mediaPath(INFO_HASH, 0)}`,
        method: request.method ?? 'GET',
        mode: request.mode ?? 'no-cors',
        destination: request.destination ?? 'video',
        headers: request.headers ?? new Headers(),
      },
      'player',
    );
    if (!response) throw new Error('the responder did not take the request');
    return response;
  };
  return { server, torrent, video, fetch };
}

/** Byte for byte (vitest's deep equality walks a large array element by element, for seconds). */
function expectBytes(actual: ArrayBuffer, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.length);
  expect(Buffer.from(actual).equals(expected)).toBe(true);
}

const range = (value: string) => new Headers({ range: value });

describe('media serving (worker ⇄ engines host)', () => {
  it('answers a range with exactly its bytes, as pieces arrive', async () => {
    const { fetch, video } = setup();
    const response = await fetch({ headers: range('bytes=70000-200000') });
    expect(response.status).toBe(206);
    expect(response.headers.get('content-type')).toBe('video/webm');
    expect(response.headers.get('content-range')).toBe(`bytes 70000-200000/${video.length}`);
    expect(response.headers.get('content-length')).toBe(String(200000 - 70000 + 1));
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    const body = response.arrayBuffer();
    // Nothing is downloaded yet: the body waits for the pieces instead of ending.
    await new Promise((resolve) => setTimeout(resolve, 50));
    video.download(video.length);
    expectBytes(await body, video.bytes.slice(70000, 200001));
  });

  it('answers without a Range with the whole file, and a one-byte range with one byte', async () => {
    const { fetch, video, server } = setup();
    video.download(video.length);
    const whole = await fetch();
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-length')).toBe(String(video.length));
    expectBytes(await whole.arrayBuffer(), video.bytes);
    // WebTorrent's iterator reads past an end of 0; the server still sends one byte.
    const one = await fetch({ headers: range('bytes=0-0') });
    expect(one.status).toBe(206);
    expectBytes(await one.arrayBuffer(), video.bytes.slice(0, 1));
    const tail = await fetch({ headers: range('bytes=-10') });
    expectBytes(await tail.arrayBuffer(), video.bytes.slice(-10));
    expect(server.openStreams).toBe(0);
  });

  it('refuses a range past the end (416) and answers HEAD without a body', async () => {
    const { fetch, video } = setup();
    const past = await fetch({ headers: range(`bytes=${video.length}-`) });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${video.length}`);
    const head = await fetch({ method: 'HEAD', headers: range('bytes=10-19') });
    expect(head.status).toBe(206);
    expect(head.headers.get('content-length')).toBe('10');
    expect(await head.text()).toBe('');
  });

  it('serves only the extension’s own pages, only to media elements, never as a page', async () => {
    const { fetch } = setup();
    const refused = async (request: Parameters<Setup['fetch']>[0]) => {
      const response = await fetch(request);
      return [response.status, response.headers.get('x-underpass-error')];
    };
    expect(await refused({ clientUrl: 'https://evil.example/' })).toEqual([403, 'forbidden']);
    expect(await refused({ clientUrl: undefined })).toEqual([403, 'forbidden']);
    expect(await refused({ mode: 'navigate', destination: 'document' })).toEqual([403, 'forbidden']);
    expect(await refused({ destination: '' })).toEqual([403, 'forbidden']);
    expect(await refused({ destination: 'script' })).toEqual([403, 'forbidden']);
    expect(await refused({ method: 'POST' })).toEqual([405, 'bad-method']);
  });

  it('serves only audio and video files of torrents in the downloads', async () => {
    const { fetch, torrent } = setup();
    const refused = async (path: string) => {
      const response = await fetch({ path });
      return [response.status, response.headers.get('x-underpass-error')];
    };
    expect(await refused(mediaPath('b'.repeat(40), 0))).toEqual([404, 'no-torrent']);
    expect(await refused(mediaPath(INFO_HASH, 7))).toEqual([404, 'no-file']);
    expect(await refused(mediaPath(INFO_HASH, 1))).toEqual([415, 'not-media']);
    expect(await refused(`/media/${INFO_HASH}/01`)).toEqual([404, 'no-file']);
    expect(await refused(`/media/${INFO_HASH}/0?x=1`)).toEqual([404, 'no-file']);
    torrent.ready = false;
    expect(await refused(mediaPath(INFO_HASH, 0))).toEqual([503, 'no-metadata']);
  });

  it('says Downloads are off when there is no engines host, or it does not answer', async () => {
    const none = setup({ host: 'none' });
    expect((await none.fetch()).headers.get('x-underpass-error')).toBe('downloads-off');
    const silent = setup({ host: { postMessage: () => {} } });
    const response = await silent.fetch();
    expect([response.status, response.headers.get('x-underpass-error')]).toEqual([503, 'downloads-off']);
  });

  it('fails the response when the torrent is removed mid-stream, and lets the file go', async () => {
    const { fetch, video, torrent, server } = setup();
    video.download(PIECE);
    const response = await fetch();
    const reader = response.body!.getReader();
    expect((await reader.read()).value?.length).toBe(PIECE);
    const waiting = reader.read(); // the second piece is not there
    await new Promise((resolve) => setTimeout(resolve, 20));
    torrent.remove();
    await expect(waiting).rejects.toThrow('no longer in your downloads');
    expect(server.openStreams).toBe(0);
    expect(video.returned).toBe(1);
  });

  it('ends every stream when the server stops, and takes no more requests', async () => {
    const { fetch, server } = setup();
    const response = await fetch();
    const reading = response.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 20));
    server.stop();
    await expect(reading).rejects.toThrow();
    expect((await fetch()).headers.get('x-underpass-error')).toBe('downloads-off');
  });

  it('lets a cancelled response go at the host', async () => {
    const { fetch, server, video } = setup();
    const response = await fetch();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(server.openStreams).toBe(1);
    await response.body!.cancel();
    await expect.poll(() => server.openStreams).toBe(0);
    expect(video.returned).toBe(1);
  });

  it('closes the least recently read stream when too many are open', async () => {
    const { fetch, server } = setup({ maxStreams: 2 });
    const first = await fetch();
    const firstFails = expect(first.arrayBuffer()).rejects.toThrow('no longer in your downloads');
    const second = await fetch();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(server.openStreams).toBe(2);
    const third = await fetch();
    await firstFails;
    expect(server.openStreams).toBe(2);
    await Promise.all([second.body!.cancel(), third.body!.cancel()]);
    await expect.poll(() => server.openStreams).toBe(0);
  });

  it('fails a response whose host sends a malformed head or more bytes than it promised', async () => {
    const answering = (answers: unknown[]): MediaHost => ({
      postMessage: (_message, transfer) => {
        const port = transfer[0] as MessagePort;
        port.postMessage(answers[0]);
        port.onmessage = () => port.postMessage(answers[1]);
      },
    });
    const malformed = setup({ host: answering([{ type: 'file', contentType: 'text/html', size: 5 }]) });
    const bad = await malformed.fetch();
    expect([bad.status, bad.headers.get('x-underpass-error')]).toEqual([502, 'bad-answer']);
    const outside = setup({
      host: answering([
        { type: 'file', contentType: 'video/webm', size: 5, start: 0, end: 9, partial: true },
      ]),
    });
    expect((await outside.fetch()).status).toBe(502);
    const tooMuch = setup({
      host: answering([
        { type: 'file', contentType: 'video/webm', size: 5, start: 0, end: 4, partial: false },
        { type: 'chunk', bytes: new Uint8Array(6) },
      ]),
    });
    await expect((await tooMuch.fetch()).arrayBuffer()).rejects.toThrow('wrong number of bytes');
  });

  it('leaves other requests to the browser', () => {
    const respond = createMediaResponder({
      origin: ORIGIN,
      clientUrl: () => Promise.resolve(PLAYER),
      host: () => Promise.resolve(undefined),
    });
    const request = (url: string): MediaFetch => ({
      url,
      method: 'GET',
      mode: 'no-cors',
      destination: 'video',
      headers: new Headers(),
    });
    expect(respond(request(`${ORIGIN}/player.html`), 'player')).toBeUndefined();
    expect(respond(request(`https://example.com/media/${INFO_HASH}/0`), 'player')).toBeUndefined();
    expect(MEDIA_REQUEST_TYPE).toBe('underpass-media-request');
  });
});
