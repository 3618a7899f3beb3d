/**
 * Which files the Downloads page offers to play while they download: the ones a <video> or <audio> element
 * in Chromium can play, known by their extension (the torrent says nothing else about a file's content).
 */
export type MediaKind = 'video' | 'audio';

const VIDEO = new Set(['mp4', 'm4v', 'webm', 'mkv', 'mov', 'ogv']);
const AUDIO = new Set(['mp3', 'm4a', 'aac', 'ogg', 'oga', 'opus', 'flac', 'wav']);

export function mediaKindOf(path: string): MediaKind | undefined {
  const dot = path.lastIndexOf('.');
  if (dot < 0) return undefined;
  const extension = path.slice(dot + 1).toLowerCase();
  if (VIDEO.has(extension)) return 'video';
  if (AUDIO.has(extension)) return 'audio';
  return undefined;
}
