import { MAX_LISTED_FILES, type DownloadsEngineState, type TorrentProgress } from './downloads-messages';

/**
 * Downloads at a glance, for the toolbar badge and the popup's line: how many torrents are still working
 * (waiting for a path, getting metadata or downloading; not paused, done or failed), and their progress.
 */
export type DownloadsSummary = {
  /** Torrents listed at all. */
  listed: number;
  active: number;
  failed: number;
  /** Bytes of the selected files verified, and wanted, over the active torrents with metadata. */
  downloaded: number;
  wanted: number;
  /** Bytes per second, summed over the active torrents. */
  speed: number;
};

export const NO_DOWNLOADS: DownloadsSummary = {
  listed: 0,
  active: 0,
  failed: 0,
  downloaded: 0,
  wanted: 0,
  speed: 0,
};

export function isActive(torrent: TorrentProgress): boolean {
  const status = torrent.state.status;
  return status === 'waiting' || status === 'metadata' || status === 'downloading';
}

export function summarizeDownloads(state: DownloadsEngineState): DownloadsSummary {
  if (state.status !== 'on') return NO_DOWNLOADS;
  const summary = { ...NO_DOWNLOADS, listed: state.torrents.length };
  for (const torrent of state.torrents) {
    if (torrent.state.status === 'failed') summary.failed += 1;
    if (!isActive(torrent)) continue;
    summary.active += 1;
    summary.speed += torrent.downloadSpeed;
    const wanted = wantedBytes(torrent);
    summary.wanted += wanted;
    summary.downloaded += Math.max(0, wanted - torrent.remaining);
  }
  return summary;
}

/**
 * Bytes of the files the user selected (the whole torrent while every file is, or when the list was cut at
 * MAX_LISTED_FILES); 0 before the metadata.
 */
export function wantedBytes(torrent: TorrentProgress): number {
  const selected = torrent.files.filter((file) => file.selected);
  if (selected.length === torrent.files.length || torrent.files.length >= MAX_LISTED_FILES)
    return torrent.length;
  return selected.reduce((sum, file) => sum + file.length, 0);
}
