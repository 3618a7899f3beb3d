import { describe, expect, it } from 'vitest';
import { chooseMseFormat, mseMimeOf, type TrackCodec } from '../features/downloads/media-source-format';

const H264: TrackCodec = { kind: 'video', codec: 'avc', parameter: 'avc1.64001f' };
const AAC: TrackCodec = { kind: 'audio', codec: 'aac', parameter: 'mp4a.40.2' };
const VP8: TrackCodec = { kind: 'video', codec: 'vp8', parameter: 'vp8' };
const VORBIS: TrackCodec = { kind: 'audio', codec: 'vorbis', parameter: 'vorbis' };
const PCM: TrackCodec = { kind: 'audio', codec: 'pcm-s16', parameter: 'pcm-s16' };

/** A browser that plays exactly these MIME types. */
const plays =
  (...mimes: string[]) =>
  (mime: string) =>
    mimes.includes(mime);

describe('the container a Firefox player feeds its MediaSource with', () => {
  it('is fragmented MP4 when the browser plays the tracks in it', () => {
    const mime = 'video/mp4; codecs="avc1.64001f, mp4a.40.2"';
    expect(chooseMseFormat([H264, AAC], plays(mime))).toEqual({ container: 'mp4', mime });
    expect(mseMimeOf('mp4', [AAC])).toBe('audio/mp4; codecs="mp4a.40.2"');
  });

  it('is WebM when the browser takes these codecs only there', () => {
    const mime = 'video/webm; codecs="vp8, vorbis"';
    expect(chooseMseFormat([VP8, VORBIS], plays(mime))).toEqual({ container: 'webm', mime });
    // Vorbis is not put in MP4 at all.
    const asked: string[] = [];
    chooseMseFormat([VP8, VORBIS], (candidate) => (asked.push(candidate), false));
    expect(asked).toEqual([mime]);
  });

  it('is none when the browser plays neither, for PCM, without tracks, or for a hostile codec string', () => {
    expect(chooseMseFormat([H264], plays())).toBeUndefined();
    expect(chooseMseFormat([PCM], () => true)).toBeUndefined();
    expect(chooseMseFormat([], () => true)).toBeUndefined();
    expect(
      chooseMseFormat([{ ...H264, parameter: 'avc1", video/webm; codecs="vp8' }], () => true),
    ).toBeUndefined();
  });
});
