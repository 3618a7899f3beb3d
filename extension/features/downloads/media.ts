/**
 * Which files the Downloads page offers to play while they download: the ones a <video> or <audio> element
 * in Chromium can play, known by their extension (the torrent says nothing else about a file's content).
 * The same table gives the Content-Type the media server answers with: a file is only ever served as one of
 * these types, never as something the browser would run or render (HTML, script, SVG…).
 */
export type MediaKind = 'video' | 'audio';

const MEDIA = {
  mp4: { kind: 'video', type: 'video/mp4' },
  m4v: { kind: 'video', type: 'video/mp4' },
  webm: { kind: 'video', type: 'video/webm' },
  mkv: { kind: 'video', type: 'video/x-matroska' },
  mov: { kind: 'video', type: 'video/quicktime' },
  ogv: { kind: 'video', type: 'video/ogg' },
  mp3: { kind: 'audio', type: 'audio/mpeg' },
  m4a: { kind: 'audio', type: 'audio/mp4' },
  aac: { kind: 'audio', type: 'audio/aac' },
  ogg: { kind: 'audio', type: 'audio/ogg' },
  oga: { kind: 'audio', type: 'audio/ogg' },
  opus: { kind: 'audio', type: 'audio/ogg' },
  flac: { kind: 'audio', type: 'audio/flac' },
  wav: { kind: 'audio', type: 'audio/wav' },
} as const satisfies Record<string, { kind: MediaKind; type: string }>;

export type MediaType = (typeof MEDIA)[keyof typeof MEDIA]['type'];
/** Every Content-Type the media server may answer with (the worker checks the offscreen's answer against it). */
export const MEDIA_TYPES: readonly MediaType[] = [
  ...new Set(Object.values(MEDIA).map((entry) => entry.type)),
];

function mediaOf(path: string): { kind: MediaKind; type: MediaType } | undefined {
  const dot = path.lastIndexOf('.');
  if (dot < 0) return undefined;
  const extension = path.slice(dot + 1).toLowerCase();
  return Object.hasOwn(MEDIA, extension) ? MEDIA[extension as keyof typeof MEDIA] : undefined;
}

export function mediaKindOf(path: string): MediaKind | undefined {
  return mediaOf(path)?.kind;
}

/** The Content-Type a playable file is served with; undefined for anything else (which is not served). */
export function mediaTypeOf(path: string): MediaType | undefined {
  return mediaOf(path)?.type;
}
