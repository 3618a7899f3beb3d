import { formatBytes } from '../../components/format';
import type { DownloadState, DownloadsPath } from '../../features/downloads/downloads-messages';
import { MAX_TORRENT_FILE_BYTES } from '../../features/downloads/downloads-messages';
import type { TorrentFileProblem } from '../../features/downloads/torrent-file';
import type { TorrentFetchProblem } from '../../features/downloads/torrent-link';
import { t } from '../../lib/i18n';
import type { SwitchError } from '../../lib/switch-error';

/** What the Downloads page says of each state and failure, in the user's language. */

export function stateWords(state: DownloadState): string {
  switch (state.status) {
    case 'waiting':
      return state.reason ? t('downloadsWaitingPath', ensurePeriod(state.reason)) : t('downloadsWaiting');
    case 'metadata':
      return t('downloadsMetadata');
    case 'downloading':
      return t('downloadsDownloading');
    case 'paused':
      return t('downloadsPaused');
    case 'done':
      return t('downloadsDone');
    case 'failed':
      return t('downloadsFailed', failureWords(state));
  }
}

export function failureWords(failure: SwitchError): string {
  switch (failure.code) {
    case 'metadata-timeout':
      return t('downloadsMetadataTimeout');
    case 'too-large':
      return t('downloadsTooLarge');
    case 'torrents-off':
      return t('downloadsTorrentsOff');
    case 'no-torrent-exit':
      return t('downloadsNoTorrentExit');
    default:
      return failure.reason;
  }
}

export function pathWords(path: DownloadsPath): string {
  switch (path.status) {
    case 'connecting':
      return t('downloadsPathConnecting');
    case 'ready':
      return path.sharesProtect ? t('downloadsPathSharesProtect') : t('downloadsPathReady');
    case 'reconnecting':
      return t('downloadsPathReconnecting');
    case 'failed':
      return path.code === 'no-torrent-exit'
        ? t('downloadsNoTorrentExit')
        : t('downloadsPathFailed', path.reason);
  }
}

export function torrentFileProblemWords(problem: TorrentFileProblem, name: string, detail: string): string {
  switch (problem) {
    case 'empty':
      return t('downloadsFileEmpty', name);
    case 'too-large':
      return t('downloadsFileTooLarge', name, formatBytes(MAX_TORRENT_FILE_BYTES));
    case 'not-a-torrent':
      return t('downloadsNotATorrent', name, detail);
    case 'unsupported':
      return t('downloadsTorrentUnsupported', name);
  }
}

export function fetchProblemWords(problem: TorrentFetchProblem, url: string, detail: string): string {
  switch (problem) {
    case 'timeout':
      return t('downloadsFetchTimeout', url);
    case 'too-large':
      return t('downloadsFetchTooLarge', url);
    case 'http-status':
      return t('downloadsFetchStatus', url, detail);
    case 'network':
      return t('downloadsFetchNetwork', url, detail);
  }
}

function ensurePeriod(text: string): string {
  return /[.!?…]$/.test(text.trim()) ? text.trim() : `${text.trim()}.`;
}

/** A torrent's file name as the browser's downloads take it: no folders, nothing that climbs out. */
export function safeFileName(name: string): string {
  const cleaned = [...name]
    .map((char) => (char.charCodeAt(0) < 32 || '\\/:*?"<>|'.includes(char) ? '_' : char))
    .join('')
    .replace(/^\.+/, '_');
  return cleaned.length > 0 ? cleaned : 'download';
}
