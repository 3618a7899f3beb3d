import browser from 'webextension-polyfill';
import { createMediaHostReader, type MediaHostWindow } from '../../features/downloads/media-host-reader';
import {
  PlaybackError,
  playWithMediaSource,
  type MediaSourcePlayer,
} from '../../features/downloads/media-source-player';
import type { PlayerLink } from './player-view';

/**
 * Firefox's player: a MediaSource fed from the engines' host, which is the background page (its window takes
 * the media requests; features/downloads/media-source-player.ts). Loaded only by the Firefox build, so
 * Chrome's player carries no demuxer.
 */
export async function playInFirefox(
  media: HTMLMediaElement,
  link: PlayerLink,
  onError: (error: PlaybackError) => void,
): Promise<MediaSourcePlayer> {
  // Null in a private window, where the background page is not reachable.
  const host = (await browser.runtime.getBackgroundPage().catch(() => null)) as MediaHostWindow | null;
  if (!host) {
    onError(new PlaybackError('downloads-off'));
    return { stop: () => {} };
  }
  return playWithMediaSource({
    media,
    openReader: () =>
      createMediaHostReader({
        host,
        origin: location.origin,
        infoHash: link.infoHash,
        fileIndex: link.fileIndex,
      }),
    onError,
  });
}
