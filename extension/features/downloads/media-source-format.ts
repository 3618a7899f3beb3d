/**
 * What a Firefox player feeds its MediaSource with: the file's tracks copied, as they are (no decoding), into
 * fragments of a container MSE takes. Fragmented MP4 first (it holds every codec a browser plays), WebM when the
 * browser takes that and not MP4 for these codecs (VP8 and Vorbis, in some builds); the browser's own
 * `MediaSource.isTypeSupported` has the last word, so a codec it cannot play is refused before anything
 * is fetched, in words, rather than a black box.
 */

export type MseContainer = 'mp4' | 'webm';

/** One track the player would feed: its kind, Mediabunny's codec name and its RFC 6381 parameter string. */
export type TrackCodec = { kind: 'video' | 'audio'; codec: string; parameter: string };

export type MseFormat = { container: MseContainer; mime: string };

/**
 * The codecs each container carries in fragments. PCM is left out: MP4's fragmented writer cannot carry it, and
 * no browser's MSE plays it.
 */
const CONTAINER_CODECS: Record<MseContainer, ReadonlySet<string>> = {
  mp4: new Set(['avc', 'hevc', 'vp8', 'vp9', 'av1', 'aac', 'opus', 'mp3', 'flac', 'ac3', 'eac3']),
  webm: new Set(['vp8', 'vp9', 'av1', 'opus', 'vorbis']),
};

const CONTAINERS: readonly MseContainer[] = ['mp4', 'webm'];

/** A parameter string as a MIME codecs entry: no quotes, commas or spaces of a hostile file's making. */
const SAFE_PARAMETER = /^[A-Za-z0-9._-]{1,64}$/;

export function mseMimeOf(container: MseContainer, tracks: readonly TrackCodec[]): string {
  const base = tracks.some((track) => track.kind === 'video') ? 'video' : 'audio';
  return `${base}/${container}; codecs="${tracks.map((track) => track.parameter).join(', ')}"`;
}

/** The first container that carries every track and that the browser says it plays; undefined when none. */
export function chooseMseFormat(
  tracks: readonly TrackCodec[],
  isTypeSupported: (mime: string) => boolean,
): MseFormat | undefined {
  if (tracks.length === 0 || !tracks.every((track) => SAFE_PARAMETER.test(track.parameter))) return undefined;
  for (const container of CONTAINERS) {
    if (!tracks.every((track) => CONTAINER_CODECS[container].has(track.codec))) continue;
    const mime = mseMimeOf(container, tracks);
    if (isTypeSupported(mime)) return { container, mime };
  }
  return undefined;
}
