import {
  ADTS,
  AppendOnlyStreamTarget,
  CustomSource,
  EncodedAudioPacketSource,
  EncodedPacketSink,
  EncodedVideoPacketSource,
  FLAC,
  Input,
  MATROSKA,
  MP3,
  MP4,
  Mp4OutputFormat,
  OGG,
  Output,
  QTFF,
  UnsupportedInputFormatError,
  WAVE,
  WEBM,
  WebMOutputFormat,
  type EncodedPacket,
  type InputAudioTrack,
  type InputVideoTrack,
} from 'mediabunny';
import { MediaReadError, type MediaHostReader, type MediaReadFailure } from './media-host-reader';
import { chooseMseFormat, type MseFormat, type TrackCodec } from './media-source-format';
import { feedReaches, islandsAwayFrom, playedStretch, rangeAt, rangesOf } from './media-source-window';

/**
 * Firefox's way of playing while downloading (its add-on pages have no service worker to answer a media
 * element's requests): the player page feeds the element a MediaSource. Mediabunny (MPL-2.0) reads the file's
 * container through byte ranges the engines' host serves (media-host-reader.ts; the host fetches the pieces a
 * range needs first), and copies the primary video and audio tracks' packets, without decoding them, into
 * fragments MSE takes (media-source-format.ts). MP4 with its index at the end works too: the index is read
 * where it is, which fetches those pieces first. A seek outside what is buffered starts a new feed at the key
 * frame before the new position (from the file's index: MP4's sample table, WebM's Cues; a WebM without Cues
 * is read from its start to find it), and cancels the old feed's reads. The buffer is bounded both ways
 * (media-source-window.ts), and so is what the muxer may hold before it writes a fragment: the file comes from
 * strangers.
 */

export type PlaybackErrorCode =
  | MediaReadFailure
  /** Not a container Mediabunny reads, or one with no audio or video track. */
  | 'unsupported-format'
  /** The tracks' codecs are not ones this browser's MSE plays. */
  | 'unsupported-codec'
  /** The container is damaged or not what its name says (a parse error, a missing key frame…). */
  | 'bad-file'
  /** The file needs more buffer than the player allows (a fragment too large, the quota full while playing). */
  | 'no-room';

export class PlaybackError extends Error {
  constructor(
    readonly code: PlaybackErrorCode,
    options?: { cause?: unknown },
  ) {
    super(`playback failed: ${code}`, options);
    this.name = 'PlaybackError';
  }
}

export type MediaSourcePlayerOptions = {
  media: HTMLMediaElement;
  /**
   * A new reader of the file's bytes. Each feed (the first, and one per seek outside what is buffered) has its
   * own, so the reads a seek no longer needs are cancelled, and the host drops their pieces' priority.
   */
  openReader(): MediaHostReader;
  /** Told once, when playing stops for good (not for the element's own decode errors, which it reports). */
  onError(error: PlaybackError): void;
  /** Seconds fed ahead of the playing position; default AHEAD_S. */
  aheadSeconds?: number;
  /** Played seconds kept (for a short seek back); default BEHIND_S. */
  behindSeconds?: number;
  /** Packet bytes the muxer may hold before writing a fragment; default MAX_UNWRITTEN_BYTES. */
  maxUnwrittenBytes?: number;
  /** Default: the page's MediaSource. */
  mediaSourceClass?: typeof MediaSource;
};

export const AHEAD_S = 30;
export const BEHIND_S = 10;
/** A fragment is one key frame's group of packets: tens of MB at most for a real video, never the whole file. */
export const MAX_UNWRITTEN_BYTES = 48 * 1024 * 1024;

const INPUT_FORMATS = [MP4, QTFF, WEBM, MATROSKA, OGG, MP3, ADTS, FLAC, WAVE];

export interface MediaSourcePlayer {
  /** Stops feeding, cancels every read, and detaches the MediaSource. */
  stop(): void;
}

export function playWithMediaSource(options: MediaSourcePlayerOptions): MediaSourcePlayer {
  const session = new Session(options);
  void session.start();
  return { stop: () => session.stop() };
}

type Tracks = { video: InputVideoTrack | null; audio: InputAudioTrack | null };

function inputOver(reader: MediaHostReader, size: number): Input {
  return new Input({
    formats: INPUT_FORMATS,
    source: new CustomSource({
      getSize: () => size,
      read: (start, end) => reader.read(start, end),
      dispose: () => reader.cancel(),
      // Few, larger reads once the access is sequential: each read is one request to the host.
      prefetchProfile: 'network',
    }),
  });
}

async function tracksOf(input: Input): Promise<Tracks> {
  const [video, audio] = await Promise.all([input.getPrimaryVideoTrack(), input.getPrimaryAudioTrack()]);
  return { video, audio };
}

function asPlaybackError(error: unknown): PlaybackError {
  if (error instanceof PlaybackError) return error;
  if (error instanceof MediaReadError) return new PlaybackError(error.code, { cause: error });
  if (error instanceof UnsupportedInputFormatError)
    return new PlaybackError('unsupported-format', { cause: error });
  if (error instanceof DOMException && error.name === 'NotSupportedError')
    return new PlaybackError('unsupported-codec', { cause: error });
  if (error instanceof DOMException && error.name === 'QuotaExceededError')
    return new PlaybackError('no-room', { cause: error });
  return new PlaybackError('bad-file', { cause: error });
}

/** One SourceBuffer operation (append or remove), resolved when the buffer is done with it. */
function bufferOperation(buffer: SourceBuffer, run: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (error?: Error) => {
      buffer.removeEventListener('updateend', onEnd);
      buffer.removeEventListener('error', onError);
      if (error) reject(error);
      else resolve();
    };
    const onEnd = () => settle();
    const onError = () => settle(new PlaybackError('bad-file'));
    buffer.addEventListener('updateend', onEnd);
    buffer.addEventListener('error', onError);
    try {
      run();
    } catch (error) {
      settle(error instanceof Error ? error : new Error(String(error)));
    }
  });
}

class Session {
  private stopped = false;
  private mediaSource: MediaSource | undefined;
  private buffer: SourceBuffer | undefined;
  private format: MseFormat | undefined;
  private size = 0;
  private feed: Feed | undefined;
  /** Counts seeks that start a feed: only the latest one's feed starts. */
  private seeks = 0;
  /** Appends, removals and resets, one at a time, in order (a SourceBuffer takes one operation at a time). */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly listeners: [string, () => void][] = [];
  private readonly aheadSeconds: number;
  private readonly behindSeconds: number;

  constructor(private readonly options: MediaSourcePlayerOptions) {
    this.aheadSeconds = options.aheadSeconds ?? AHEAD_S;
    this.behindSeconds = options.behindSeconds ?? BEHIND_S;
  }

  async start(): Promise<void> {
    const { media } = this.options;
    try {
      const reader = this.options.openReader();
      this.size = await reader.size();
      const input = inputOver(reader, this.size);
      const tracks = await tracksOf(input);
      const codecs = await codecsOf(tracks);
      if (!codecs)
        throw new PlaybackError(tracks.video || tracks.audio ? 'unsupported-codec' : 'unsupported-format');
      const MediaSourceClass = this.options.mediaSourceClass ?? MediaSource;
      this.format = chooseMseFormat(codecs, (mime) => MediaSourceClass.isTypeSupported(mime));
      if (!this.format) throw new PlaybackError('unsupported-codec');
      const duration = await input.getDurationFromMetadata().catch(() => null);
      if (this.stopped) return input.dispose();

      const mediaSource = new MediaSourceClass();
      this.mediaSource = mediaSource;
      const url = URL.createObjectURL(mediaSource);
      const opened = new Promise((resolve) =>
        mediaSource.addEventListener('sourceopen', resolve, { once: true }),
      );
      media.src = url;
      await opened;
      URL.revokeObjectURL(url);
      if (this.stopped) return input.dispose();
      this.buffer = mediaSource.addSourceBuffer(this.format.mime);
      if (duration !== null && Number.isFinite(duration) && duration > 0) mediaSource.duration = duration;

      this.listen('seeking', () => this.onSeeking());
      this.startFeed(input, tracks, 0);
    } catch (error) {
      this.fail(error);
    }
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.feed?.cancel();
    for (const [type, listener] of this.listeners) this.options.media.removeEventListener(type, listener);
    this.listeners.length = 0;
    // The element lets the MediaSource (and what it buffered) go.
    if (this.mediaSource && !this.options.media.error) {
      this.options.media.removeAttribute('src');
      this.options.media.load();
    }
  }

  private listen(type: string, listener: () => void): void {
    this.options.media.addEventListener(type, listener);
    this.listeners.push([type, listener]);
  }

  private fail(error: unknown): void {
    if (this.stopped) return;
    this.stop();
    // The element's own error (a frame it cannot decode) is the element's to tell.
    if (this.options.media.error) return;
    this.options.onError(asPlaybackError(error));
  }

  /** A seek outside what is buffered, or away from where the feed writes: feed again from there. */
  private onSeeking(): void {
    const buffer = this.buffer;
    if (this.stopped || !buffer) return;
    const time = this.options.media.currentTime;
    if (feedReaches(rangesOf(buffer.buffered), time, this.feed?.fedTo)) return;
    const old = this.feed;
    old?.cancel();
    const seek = ++this.seeks;
    const reader = this.options.openReader();
    const input = inputOver(reader, this.size);
    // The old feed's last append finishes (or fails) before the buffer forgets its half-parsed fragment.
    this.enqueue(async () => {
      await old?.done;
      if (this.mediaSource?.readyState === 'open' && !buffer.updating) buffer.abort();
    });
    void tracksOf(input).then(
      (tracks) => {
        if (this.stopped || seek !== this.seeks) return input.dispose();
        this.startFeed(input, tracks, time);
      },
      (error: unknown) => this.fail(error),
    );
  }

  private startFeed(input: Input, tracks: Tracks, at: number): void {
    const feed = new Feed({
      input,
      tracks,
      format: this.format!,
      at,
      media: this.options.media,
      aheadSeconds: this.aheadSeconds,
      maxUnwrittenBytes: this.options.maxUnwrittenBytes ?? MAX_UNWRITTEN_BYTES,
      append: (bytes) => this.append(bytes),
    });
    this.feed = feed;
    feed.done.then(
      (outcome) => {
        if (outcome === 'ended' && this.feed === feed) this.enqueue(() => this.endOfStream());
      },
      (error: unknown) => {
        if (this.feed === feed) this.fail(error);
      },
    );
  }

  private enqueue<T>(step: () => Promise<T>): Promise<T> {
    const run = this.queue.then(step);
    this.queue = run.catch(() => {});
    return run;
  }

  private append(bytes: Uint8Array<ArrayBuffer>): Promise<void> {
    return this.enqueue(async () => {
      const buffer = this.buffer;
      if (!buffer || this.stopped) throw new PlaybackError('cancelled');
      await this.removePlayed(buffer);
      for (;;) {
        try {
          await bufferOperation(buffer, () => buffer.appendBuffer(bytes));
          return;
        } catch (error) {
          if (!(error instanceof DOMException && error.name === 'QuotaExceededError')) throw error;
          await this.makeRoom(buffer);
        }
      }
    });
  }

  private async removePlayed(buffer: SourceBuffer): Promise<void> {
    const stretch = playedStretch(
      rangesOf(buffer.buffered),
      this.options.media.currentTime,
      this.behindSeconds,
    );
    if (stretch) await bufferOperation(buffer, () => buffer.remove(stretch[0], stretch[1]));
  }

  /**
   * The quota is reached: drop what is played, then what is buffered away from the playing position; when
   * only the range being played is left, wait for it to play on. A paused or stalled element with a full
   * buffer has no room to make: that is an error in words, not a hang.
   */
  private async makeRoom(buffer: SourceBuffer): Promise<void> {
    const { media } = this.options;
    const time = media.currentTime;
    const ranges = rangesOf(buffer.buffered);
    const played = playedStretch(ranges, time, 1);
    if (played) return bufferOperation(buffer, () => buffer.remove(played[0], played[1]));
    const islands = islandsAwayFrom(ranges, time);
    if (islands.length > 0) {
      for (const [start, end] of islands) await bufferOperation(buffer, () => buffer.remove(start, end));
      return;
    }
    if (media.paused || !rangeAt(ranges, time)) throw new PlaybackError('no-room');
    await new Promise((resolve) => media.addEventListener('timeupdate', resolve, { once: true }));
  }

  private async endOfStream(): Promise<void> {
    const mediaSource = this.mediaSource;
    if (!mediaSource || mediaSource.readyState !== 'open' || this.buffer?.updating) return;
    mediaSource.endOfStream();
  }
}

async function codecsOf(tracks: Tracks): Promise<TrackCodec[] | undefined> {
  const codecs: TrackCodec[] = [];
  for (const [kind, track] of [
    ['video', tracks.video],
    ['audio', tracks.audio],
  ] as const) {
    if (!track) continue;
    const parameter = await track.getCodecParameterString();
    if (!track.codec || !parameter) return undefined;
    codecs.push({ kind, codec: track.codec, parameter });
  }
  return codecs.length > 0 ? codecs : undefined;
}

type FeedOptions = {
  input: Input;
  tracks: Tracks;
  format: MseFormat;
  /** Where to start: the key frame at or before this time. */
  at: number;
  media: HTMLMediaElement;
  aheadSeconds: number;
  maxUnwrittenBytes: number;
  append(bytes: Uint8Array<ArrayBuffer>): Promise<void>;
};

type Lane = {
  packets: AsyncGenerator<EncodedPacket, void, unknown>;
  next: EncodedPacket | undefined;
  add(packet: EncodedPacket, first: boolean): Promise<void>;
  first: boolean;
  close(): void;
};

/**
 * One pass of copying packets into fragments, from a key frame on, until the end of the file or until it is
 * cancelled (a seek elsewhere, the page closing). `done` says which, or fails with why it could not go on.
 */
class Feed {
  /** The presentation time of the last packet handed to the muxer. */
  fedTo: number | undefined;
  readonly done: Promise<'ended' | 'cancelled'>;
  private cancelled = false;
  /** Why an append failed: the muxer only hears of it at its next write, so the loop checks it itself. */
  private failure: unknown;
  private unwritten = 0;
  private wake: () => void = () => {};

  constructor(private readonly options: FeedOptions) {
    this.done = this.run().finally(() => options.input.dispose());
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.wake();
    // Cancels its reads: a read waiting for pieces lets go, and the host stops asking for them first.
    this.options.input.dispose();
  }

  private async run(): Promise<'ended' | 'cancelled'> {
    const { tracks, format, at } = this.options;
    const output = new Output({
      format:
        format.container === 'mp4'
          ? new Mp4OutputFormat({ fastStart: 'fragmented', minimumFragmentDuration: 1 })
          : new WebMOutputFormat({ appendOnly: true, minimumClusterDuration: 1 }),
      target: new AppendOnlyStreamTarget(
        new WritableStream<Uint8Array>({
          write: async (bytes) => {
            this.unwritten = 0;
            if (this.cancelled) return;
            try {
              await this.options.append(new Uint8Array(bytes));
            } catch (error) {
              this.failure ??= error;
              this.wake();
              throw error;
            }
          },
        }),
      ),
    });
    try {
      const lanes = await this.lanes(output, tracks, at);
      if (lanes.length === 0) throw new PlaybackError('bad-file');
      await output.start();
      for (;;) {
        if (this.cancelled) return 'cancelled';
        if (this.failure !== undefined) throw this.failure;
        const lane = earliest(lanes);
        if (!lane?.next) break;
        const packet = lane.next;
        await this.roomFor(packet.timestamp);
        if (this.cancelled) return 'cancelled';
        if (this.failure !== undefined) throw this.failure;
        this.unwritten += packet.byteLength;
        if (this.unwritten > this.options.maxUnwrittenBytes) throw new PlaybackError('no-room');
        await lane.add(packet, lane.first);
        lane.first = false;
        this.fedTo = Math.max(this.fedTo ?? packet.timestamp, packet.timestamp);
        const next = await lane.packets.next();
        lane.next = next.done ? undefined : next.value;
      }
      for (const lane of lanes) lane.close();
      await output.finalize();
      if (this.failure !== undefined) throw this.failure;
      return this.cancelled ? 'cancelled' : 'ended';
    } catch (error) {
      if (this.cancelled) return 'cancelled';
      throw error;
    } finally {
      if (output.state === 'pending' || output.state === 'started') await output.cancel().catch(() => {});
    }
  }

  /** One lane per track, each at its first packet: video from the key frame at or before `at`, audio from there. */
  private async lanes(output: Output, tracks: Tracks, at: number): Promise<Lane[]> {
    const lanes: Lane[] = [];
    let from = at;
    if (tracks.video?.codec) {
      const track = tracks.video;
      const sink = new EncodedPacketSink(track);
      const start =
        (await sink.getKeyPacket(at, { verifyKeyPackets: true })) ?? (await sink.getFirstKeyPacket());
      if (start) {
        from = start.timestamp;
        const source = new EncodedVideoPacketSource(track.codec!);
        output.addVideoTrack(source, { rotation: track.rotation });
        const decoderConfig = (await track.getDecoderConfig()) ?? undefined;
        lanes.push({
          packets: sink.packets(start),
          next: undefined,
          first: true,
          add: (packet, first) => source.add(packet, first && decoderConfig ? { decoderConfig } : undefined),
          close: () => source.close(),
        });
      }
    }
    if (tracks.audio?.codec) {
      const track = tracks.audio;
      const sink = new EncodedPacketSink(track);
      const start = (await sink.getPacket(from)) ?? (await sink.getFirstPacket());
      if (start) {
        const source = new EncodedAudioPacketSource(track.codec!);
        output.addAudioTrack(source);
        const decoderConfig = (await track.getDecoderConfig()) ?? undefined;
        lanes.push({
          packets: sink.packets(start),
          next: undefined,
          first: true,
          add: (packet, first) => source.add(packet, first && decoderConfig ? { decoderConfig } : undefined),
          close: () => source.close(),
        });
      }
    }
    for (const lane of lanes) {
      const next = await lane.packets.next();
      lane.next = next.done ? undefined : next.value;
    }
    return lanes;
  }

  /** Waits while the feed is more than `aheadSeconds` ahead of the playing position. */
  private async roomFor(timestamp: number): Promise<void> {
    const { media, aheadSeconds } = this.options;
    while (!this.cancelled && this.failure === undefined && timestamp - media.currentTime > aheadSeconds) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        media.addEventListener('timeupdate', () => resolve(), { once: true });
      });
    }
  }
}

/** The lane whose next packet plays first: the muxer wants the tracks interleaved. */
function earliest(lanes: readonly Lane[]): Lane | undefined {
  let best: Lane | undefined;
  for (const lane of lanes)
    if (lane.next && (!best?.next || lane.next.timestamp < best.next.timestamp)) best = lane;
  return best;
}
