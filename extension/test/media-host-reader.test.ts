import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createMediaHostReader,
  MediaReadError,
  type MediaHostWindow,
} from '../features/downloads/media-host-reader';
import { MEDIA_REQUEST_TYPE, type MediaRequest } from '../features/downloads/media-messages';
import {
  startMediaServer,
  type MediaRequestSource,
  type MediaServer,
} from '../features/downloads/media-server';
import { bytesOf, DownloadingFile, FakeTorrent, PIECE } from './media-fakes';

/**
 * Firefox's player reading byte ranges from the engines' host: the real reader and the real media server,
 * joined by real MessageChannels through a stand-in for the background page's window, serving a torrent whose
 * pieces arrive while it is read.
 */

const ORIGIN = 'moz-extension://5f0c2a4e-8f0b-4d7e-9a51-3c1d2b7e6a90';
const INFO_HASH = 'b'.repeat(40);

const servers: MediaServer[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.stop();
});

function setup(options: { fileIndex?: number; maxReads?: number; origin?: string } = {}) {
  const video = new DownloadingFile('clip/movie.mp4', bytesOf(4 * PIECE + 77));
  const notes = new DownloadingFile('clip/notes.txt', bytesOf(100));
  notes.download(100);
  const torrent = new FakeTorrent([video, notes]);
  const window = new EventTarget() as EventTarget & MediaRequestSource;
  const server = startMediaServer({
    torrentOf: (infoHash) => (infoHash === INFO_HASH ? torrent : undefined),
    source: window,
    origin: ORIGIN,
  });
  servers.push(server);
  const posted: { message: MediaRequest; targetOrigin: string }[] = [];
  const host: MediaHostWindow = {
    postMessage: (message, targetOrigin, transfer) => {
      posted.push({ message, targetOrigin });
      window.dispatchEvent(
        new MessageEvent('message', {
          data: message,
          origin: options.origin ?? ORIGIN,
          ports: transfer as MessagePort[],
        }),
      );
    },
  };
  const reader = createMediaHostReader({
    host,
    origin: ORIGIN,
    infoHash: INFO_HASH,
    fileIndex: options.fileIndex ?? 0,
    headTimeoutMs: 200,
    ...(options.maxReads ? { maxReads: options.maxReads } : {}),
  });
  return { video, torrent, server, reader, posted };
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (const reader = stream.getReader(); ;) {
    const next = await reader.read();
    if (next.done) break;
    parts.push(next.value);
  }
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

async function failureOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return error instanceof MediaReadError ? error.code : `other: ${String(error)}`;
  }
  return 'none';
}

describe('reading a file of the downloads from the host (Firefox player)', () => {
  it('gives the size, and exactly the bytes of a range once its pieces arrive', async () => {
    const { video, reader, posted } = setup();
    expect(await reader.size()).toBe(video.length);
    const stream = await reader.read(PIECE - 10, 2 * PIECE + 5);
    const bytes = readAll(stream);
    video.download(3 * PIECE);
    expect(await bytes).toEqual(video.bytes.slice(PIECE - 10, 2 * PIECE + 5));
    // One request each, to the extension's own origin only, with the range in HTTP's words.
    expect(posted.map(({ message, targetOrigin }) => [message.method, message.range, targetOrigin])).toEqual([
      ['HEAD', undefined, ORIGIN],
      ['GET', `bytes=${PIECE - 10}-${2 * PIECE + 4}`, ORIGIN],
    ]);
    expect(posted[1]?.message).toMatchObject({ type: MEDIA_REQUEST_TYPE, infoHash: INFO_HASH, fileIndex: 0 });
  });

  it('is refused what the host refuses: a file that is not media, a torrent not listed, a range past the end', async () => {
    expect(await failureOf(setup({ fileIndex: 1 }).reader.size())).toBe('not-media');
    expect(await failureOf(setup({ fileIndex: 5 }).reader.read(0, 10))).toBe('no-file');
    const { reader, video } = setup();
    expect(await failureOf(reader.read(video.length, video.length + 10))).toBe('range-not-satisfiable');
    // A range that runs past the end is cut by the host: not the bytes asked for, so not taken.
    expect(await failureOf(reader.read(video.length - 5, video.length + 10))).toBe('bad-answer');
    await expect(reader.read(10, 10)).rejects.toThrow(RangeError);
  });

  it('says Downloads are off when the host does not answer', async () => {
    // A host that takes requests from another origin only: no head comes.
    const { reader } = setup({ origin: 'https://example.com' });
    expect(await failureOf(reader.size())).toBe('downloads-off');
  });

  it('fails a read with `gone` when the torrent is removed while it waits for pieces', async () => {
    const { reader, torrent } = setup();
    const stream = await reader.read(0, PIECE);
    const bytes = readAll(stream);
    torrent.remove();
    expect(await failureOf(bytes)).toBe('gone');
  });

  it('keeps at most `maxReads` requests open; cancel lets every open and waiting read go', async () => {
    const { reader, video, server } = setup({ maxReads: 2 });
    const first = await reader.read(0, 100);
    const second = await reader.read(PIECE, PIECE + 100);
    let thirdStarted = false;
    const third = reader.read(2 * PIECE, 2 * PIECE + 100).then((stream) => {
      thirdStarted = true;
      return stream;
    });
    // Two streams open on the host; the third read waits for a slot (it has none to start with).
    await vi.waitFor(() => expect(server.openStreams).toBe(2));
    expect(thirdStarted).toBe(false);
    // The first read ends: the third one goes.
    const firstBytes = readAll(first);
    video.download(PIECE);
    expect(await firstBytes).toEqual(video.bytes.slice(0, 100));
    const thirdStream = await third;
    const waiting = reader.read(3 * PIECE, 3 * PIECE + 100);
    reader.cancel();
    expect(await failureOf(waiting)).toBe('cancelled');
    expect(await failureOf(readAll(second))).toBe('cancelled');
    expect(await failureOf(readAll(thirdStream))).toBe('cancelled');
    expect(await failureOf(reader.read(0, 10))).toBe('cancelled');
    // The host let the cancelled streams go (and with them their pieces' priority).
    await expect.poll(() => server.openStreams).toBe(0);
  });
});
