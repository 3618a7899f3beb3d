import {
  BufferSource,
  BufferTarget,
  EncodedPacket,
  EncodedPacketSink,
  EncodedVideoPacketSource,
  Input,
  MP4,
  Output,
  WebMOutputFormat,
} from 'mediabunny';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMediaHostReader, type MediaHostWindow } from '../features/downloads/media-host-reader';
import {
  startMediaServer,
  type MediaRequestSource,
  type MediaServer,
} from '../features/downloads/media-server';
import {
  playWithMediaSource,
  type MediaSourcePlayer,
  type PlaybackError,
} from '../features/downloads/media-source-player';
import { DownloadingFile, FakeTorrent } from './media-fakes';

/**
 * Firefox's MediaSource feed, run in Node around stand-ins for the media element, MediaSource and SourceBuffer
 * (which record what is appended): the real reader and media server serve a WebM made here by Mediabunny (VP8
 * packets with real frame headers, a key frame every second), whose pieces arrive as the test "downloads"
 * them. What was appended is read back as fragmented MP4, packet by packet.
 */

const ORIGIN = 'moz-extension://5f0c2a4e-8f0b-4d7e-9a51-3c1d2b7e6a90';
const INFO_HASH = 'c'.repeat(40);
const FPS = 10;
const SECONDS = 8;
const FRAME_BYTES = 2_000;

/** A VP8 WebM, 8 s at 10 frames a second, a key frame each second; each frame's byte 20 is its number. */
async function makeWebm(): Promise<Uint8Array> {
  const output = new Output({ format: new WebMOutputFormat(), target: new BufferTarget() });
  const source = new EncodedVideoPacketSource('vp8');
  output.addVideoTrack(source, { frameRate: FPS });
  await output.start();
  for (let frame = 0; frame < SECONDS * FPS; frame++) {
    const key = frame % FPS === 0;
    const data = new Uint8Array(FRAME_BYTES);
    // VP8's frame tag (bit 0 clear on a key frame) and, for a key frame, its start code and size.
    data.set(key ? [0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 64, 0, 48, 0] : [0x11, 0x02, 0x00]);
    data[20] = frame;
    await source.add(
      new EncodedPacket(data, key ? 'key' : 'delta', frame / FPS, 1 / FPS),
      frame === 0 ? { decoderConfig: { codec: 'vp8', codedWidth: 64, codedHeight: 48 } } : undefined,
    );
  }
  await output.finalize();
  return new Uint8Array(output.target.buffer!);
}

class FakeTimeRanges {
  constructor(private readonly ranges: [number, number][]) {}
  get length() {
    return this.ranges.length;
  }
  start(i: number) {
    return this.ranges[i]![0];
  }
  end(i: number) {
    return this.ranges[i]![1];
  }
}

class FakeSourceBuffer extends EventTarget {
  updating = false;
  /** What was appended since the last abort: one MP4 byte stream per feed. */
  streams: Uint8Array[][] = [[]];
  removed: [number, number][] = [];
  ranges: [number, number][] = [];
  quotaFull = false;
  get buffered() {
    return new FakeTimeRanges(this.ranges);
  }
  appendBuffer(bytes: Uint8Array) {
    if (this.quotaFull) throw new DOMException('full', 'QuotaExceededError');
    this.streams.at(-1)!.push(new Uint8Array(bytes));
    this.operation();
  }
  remove(start: number, end: number) {
    this.removed.push([start, end]);
    this.ranges = this.ranges.flatMap(
      ([from, to]): [number, number][] =>
        [
          [from, Math.min(to, start)],
          [Math.max(from, end), to],
        ].filter(([a, b]) => b! > a!) as [number, number][],
    );
    this.operation();
  }
  abort() {
    this.streams.push([]);
  }
  private operation() {
    this.updating = true;
    setTimeout(() => {
      this.updating = false;
      this.dispatchEvent(new Event('updateend'));
    }, 0);
  }
}

class FakeMediaSource extends EventTarget {
  static supported: (mime: string) => boolean = (mime) => mime === 'video/mp4; codecs="vp8"';
  static last: FakeMediaSource | undefined;
  static isTypeSupported(mime: string) {
    return FakeMediaSource.supported(mime);
  }
  readyState: 'closed' | 'open' | 'ended' = 'closed';
  duration = NaN;
  mimes: string[] = [];
  buffer = new FakeSourceBuffer();
  constructor() {
    super();
    FakeMediaSource.last = this;
    setTimeout(() => {
      this.readyState = 'open';
      this.dispatchEvent(new Event('sourceopen'));
    }, 0);
  }
  addSourceBuffer(mime: string) {
    this.mimes.push(mime);
    return this.buffer;
  }
  endOfStream() {
    this.readyState = 'ended';
  }
}

class FakeMedia extends EventTarget {
  currentTime = 0;
  paused = false;
  error: MediaError | null = null;
  src = '';
  removeAttribute() {}
  load() {}
  /** Moves the playing position, as playback or a seek does. */
  at(time: number, event: 'timeupdate' | 'seeking') {
    this.currentTime = time;
    this.dispatchEvent(new Event(event));
  }
}

/** The packets (timestamp, frame number) in one appended MP4 stream. */
async function packetsIn(stream: Uint8Array[]): Promise<[number, number][]> {
  const bytes = new Uint8Array(stream.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of stream) {
    bytes.set(part, at);
    at += part.length;
  }
  const input = new Input({ source: new BufferSource(bytes), formats: [MP4] });
  const track = await input.getPrimaryVideoTrack();
  if (!track) return [];
  const packets: [number, number][] = [];
  for await (const packet of new EncodedPacketSink(track).packets())
    packets.push([Math.round(packet.timestamp * 10) / 10, packet.data[20]!]);
  return packets;
}

const servers: MediaServer[] = [];
const players: MediaSourcePlayer[] = [];
let webm: Uint8Array;

beforeEach(async () => {
  webm ??= await makeWebm();
  FakeMediaSource.last = undefined;
  vi.spyOn(URL, 'createObjectURL').mockReturnValue('blob:moz-extension://fake');
  vi.spyOn(URL, 'revokeObjectURL').mockReturnValue(undefined);
});
afterEach(() => {
  for (const player of players.splice(0)) player.stop();
  for (const server of servers.splice(0)) server.stop();
  vi.restoreAllMocks();
});

function setup(bytes: Uint8Array, options: { aheadSeconds?: number; maxUnwrittenBytes?: number } = {}) {
  const file = new DownloadingFile('clip/movie.webm', bytes);
  const torrent = new FakeTorrent([file]);
  const window = new EventTarget() as EventTarget & MediaRequestSource;
  const server = startMediaServer({ torrentOf: () => torrent, source: window, origin: ORIGIN });
  servers.push(server);
  const host: MediaHostWindow = {
    postMessage: (message, _origin, transfer) =>
      window.dispatchEvent(
        new MessageEvent('message', { data: message, origin: ORIGIN, ports: transfer as MessagePort[] }),
      ),
  };
  const media = new FakeMedia();
  const errors: PlaybackError[] = [];
  const player = playWithMediaSource({
    media: media as unknown as HTMLMediaElement,
    openReader: () => createMediaHostReader({ host, origin: ORIGIN, infoHash: INFO_HASH, fileIndex: 0 }),
    onError: (error) => errors.push(error),
    mediaSourceClass: FakeMediaSource as unknown as typeof MediaSource,
    ...options,
  });
  players.push(player);
  return { file, torrent, server, media, errors, source: () => FakeMediaSource.last! };
}

describe("Firefox's MediaSource feed", () => {
  it('copies the packets into fragmented MP4 as their pieces come, only so far ahead, to the end', async () => {
    const { file, server, media, errors, source } = setup(webm, { aheadSeconds: 2 });
    // Less than a piece: a read waits for it, and nothing is appended meanwhile.
    file.download(1_000);
    await vi.waitFor(() => expect(server.openStreams).toBeGreaterThan(0));
    expect(FakeMediaSource.last?.buffer.streams[0] ?? []).toEqual([]);
    file.download(webm.length);
    await vi.waitFor(() => expect(source().buffer.streams[0]!.length).toBeGreaterThan(1));
    expect(source().mimes).toEqual(['video/mp4; codecs="vp8"']);
    expect(source().duration).toBeCloseTo(SECONDS, 0);
    // No more than 2 s (and a fragment) ahead of the playing position, 0.
    const early = await vi.waitFor(async () => {
      const packets = await packetsIn(source().buffer.streams[0]!);
      expect(packets.length).toBeGreaterThan(0);
      return packets;
    });
    expect(early[0]).toEqual([0, 0]);
    expect(Math.max(...early.map(([time]) => time))).toBeLessThanOrEqual(3);

    media.at(SECONDS, 'timeupdate');
    await vi.waitFor(() => expect(source().readyState).toBe('ended'));
    const all = await packetsIn(source().buffer.streams[0]!);
    expect(all).toEqual(Array.from({ length: SECONDS * FPS }, (_, frame) => [frame / FPS, frame]));
    expect(errors).toEqual([]);
  });

  it('starts again at the key frame before a seek outside what is buffered', async () => {
    const { file, media, errors, source } = setup(webm, { aheadSeconds: 1 });
    file.download(webm.length);
    await vi.waitFor(() => expect(source().buffer.streams[0]!.length).toBeGreaterThan(1));
    media.at(5.4, 'seeking');
    await vi.waitFor(async () =>
      expect((await packetsIn(source().buffer.streams[1] ?? [])).length).toBeGreaterThan(5),
    );
    const after = await packetsIn(source().buffer.streams[1]!);
    expect(after[0]).toEqual([5, 50]);
    expect(errors).toEqual([]);
  });

  it('says so in a typed error: a file that is no container, codecs the browser refuses, a fragment too large', async () => {
    const noise = new Uint8Array(50_000).map((_, i) => (i * 31 + 7) % 256);
    const garbage = setup(noise);
    garbage.file.download(noise.length);
    await vi.waitFor(() => expect(garbage.errors.map((error) => error.code)).toEqual(['unsupported-format']));

    FakeMediaSource.supported = () => false;
    try {
      const refused = setup(webm);
      refused.file.download(webm.length);
      await vi.waitFor(() =>
        expect(refused.errors.map((error) => error.code)).toEqual(['unsupported-codec']),
      );
    } finally {
      FakeMediaSource.supported = (mime: string) => mime === 'video/mp4; codecs="vp8"';
    }

    // Hostile: a second of packets is more than this player may hold before it writes a fragment.
    const huge = setup(webm, { maxUnwrittenBytes: 5 * FRAME_BYTES });
    huge.file.download(webm.length);
    await vi.waitFor(() => expect(huge.errors.map((error) => error.code)).toEqual(['no-room']));
  });

  it('fails with `gone` when the torrent is removed while a read waits for pieces', async () => {
    const { file, torrent, server, errors } = setup(webm);
    file.download(500);
    // The feed is waiting for the rest of the header's piece.
    await vi.waitFor(() => expect(server.openStreams).toBeGreaterThan(0));
    torrent.remove();
    await vi.waitFor(() => expect(errors.map((error) => error.code)).toEqual(['gone']));
  });

  it('removes what was played more than 10 s ago before it appends more', async () => {
    const { file, media, errors, source } = setup(webm, { aheadSeconds: 1 });
    file.download(webm.length);
    await vi.waitFor(() => expect(source().buffer.streams[0]!.length).toBeGreaterThan(1));
    const buffer = source().buffer;
    expect(buffer.removed).toEqual([]);
    // What the element says it holds (the stand-in decodes nothing): 20 s, 15 of them played.
    buffer.ranges = [[0, 20]];
    media.at(15, 'timeupdate');
    await vi.waitFor(() => expect(buffer.removed).toEqual([[0, 5]]));
    expect(errors).toEqual([]);
  });

  it('stops in words when the quota is full and nothing played or away from the position can go', async () => {
    const { file, media, errors, source } = setup(webm, { aheadSeconds: 1 });
    file.download(webm.length);
    await vi.waitFor(() => expect(source().buffer.streams[0]!.length).toBeGreaterThan(1));
    const buffer = source().buffer;
    buffer.ranges = [[0, 1.5]];
    buffer.quotaFull = true;
    media.paused = true;
    media.at(1, 'timeupdate');
    await vi.waitFor(() => expect(errors.map((error) => error.code)).toEqual(['no-room']));
  });
});
