import type {
  DownloadsEngineState,
  FileProgress,
  TorrentProgress,
} from '../../features/downloads/downloads-messages';
import { infoHashSchema } from '../../features/downloads/downloads-messages';
import { mediaKindOf, type MediaKind } from '../../features/downloads/media';
import { mediaPath } from '../../features/downloads/media-messages';

/**
 * What the player page shows, from its link (`player.html?infoHash=…&file=N`) and the downloads as the
 * engines' host last reported them. Only a file the downloads list, with its file list in and a name that
 * says audio or video, gets a media element; every other case is a sentence saying why not.
 */

export type PlayerLink = { infoHash: string; fileIndex: number };

export type PlayerView =
  | { status: 'bad-link' }
  /** No answer from the engines' host yet. */
  | { status: 'loading' }
  /** Downloads are not running (no engines' host, or its Downloads are off). */
  | { status: 'downloads-off' }
  /** The torrent is not (or no longer) in the downloads. */
  | { status: 'not-listed' }
  | { status: 'metadata'; torrent: TorrentProgress }
  /** The torrent failed before its file list came (metadata not found, too large…). */
  | { status: 'failed'; torrent: TorrentProgress; reason: string }
  | { status: 'no-file'; torrent: TorrentProgress }
  | { status: 'not-media'; torrent: TorrentProgress; file: FileProgress }
  /** `src`: what Chrome's media element reads (the service worker answers it); Firefox feeds a MediaSource. */
  | { status: 'playable'; torrent: TorrentProgress; file: FileProgress; kind: MediaKind; src: string };

/** The link's torrent and file, or undefined when the link does not name exactly one of each. */
export function readPlayerLink(search: string): PlayerLink | undefined {
  const params = new URLSearchParams(search);
  const infoHash = infoHashSchema.safeParse(params.get('infoHash')?.toLowerCase());
  const file = params.get('file');
  if (!infoHash.success || file === null || !/^(0|[1-9]\d{0,6})$/.test(file)) return undefined;
  return { infoHash: infoHash.data, fileIndex: Number(file) };
}

/** `engine`: the host's downloads, `undefined` before its first answer, `'no-host'` when none answered. */
export function playerViewOf(
  link: PlayerLink | undefined,
  engine: DownloadsEngineState | 'no-host' | undefined,
): PlayerView {
  if (!link) return { status: 'bad-link' };
  if (engine === undefined) return { status: 'loading' };
  if (engine === 'no-host' || engine.status === 'off') return { status: 'downloads-off' };
  const torrent = engine.torrents.find((candidate) => candidate.infoHash === link.infoHash);
  if (!torrent) return { status: 'not-listed' };
  if (torrent.files.length === 0)
    return torrent.state.status === 'failed'
      ? { status: 'failed', torrent, reason: torrent.state.reason }
      : { status: 'metadata', torrent };
  const file = torrent.files.find((candidate) => candidate.index === link.fileIndex);
  if (!file) return { status: 'no-file', torrent };
  const kind = mediaKindOf(file.path);
  if (!kind) return { status: 'not-media', torrent, file };
  return { status: 'playable', torrent, file, kind, src: mediaPath(link.infoHash, link.fileIndex) };
}

/** The file's own name: the last part of its path inside the torrent. */
export function fileNameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1) || path;
}
