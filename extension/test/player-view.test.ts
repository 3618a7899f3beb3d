import { describe, expect, it } from 'vitest';
import type { DownloadsEngineState, TorrentProgress } from '../features/downloads/downloads-messages';
import { playerViewOf, readPlayerLink } from '../entrypoints/player/player-view';

const INFO_HASH = 'c'.repeat(40);

function torrent(overrides: Partial<TorrentProgress> = {}): TorrentProgress {
  return {
    infoHash: INFO_HASH,
    name: 'clip',
    length: 300,
    downloaded: 100,
    remaining: 200,
    downloadSpeed: 10,
    peers: 1,
    state: { status: 'downloading' },
    files: [
      { index: 0, path: 'clip/notes.txt', length: 100, downloaded: 100, done: true, selected: true },
      { index: 1, path: 'clip/movie.WebM', length: 200, downloaded: 0, done: false, selected: true },
    ],
    ...overrides,
  };
}

const on = (...torrents: TorrentProgress[]): DownloadsEngineState => ({
  status: 'on',
  path: { status: 'ready', exitPeerId: 'exit' },
  torrents,
});

describe('the player link', () => {
  it('names exactly one torrent and one file', () => {
    expect(readPlayerLink(`?infoHash=${INFO_HASH}&file=1`)).toEqual({ infoHash: INFO_HASH, fileIndex: 1 });
    expect(readPlayerLink(`?infoHash=${INFO_HASH.toUpperCase()}&file=0`)).toEqual({
      infoHash: INFO_HASH,
      fileIndex: 0,
    });
    for (const bad of [
      '',
      `?infoHash=${INFO_HASH}`,
      '?infoHash=xyz&file=1',
      `?infoHash=${INFO_HASH}&file=-1`,
    ]) {
      expect(readPlayerLink(bad), bad).toBeUndefined();
    }
    expect(readPlayerLink(`?infoHash=${INFO_HASH}&file=01`)).toBeUndefined();
    expect(readPlayerLink(`?infoHash=${INFO_HASH}&file=1e3`)).toBeUndefined();
  });
});

describe('what the player shows', () => {
  const link = { infoHash: INFO_HASH, fileIndex: 1 };

  it('plays an audio or video file the downloads list, from the media path', () => {
    const view = playerViewOf(link, on(torrent()));
    expect(view).toMatchObject({ status: 'playable', kind: 'video', src: `/media/${INFO_HASH}/1` });
  });

  it('says why nothing plays', () => {
    expect(playerViewOf(undefined, on(torrent())).status).toBe('bad-link');
    expect(playerViewOf(link, undefined).status).toBe('loading');
    expect(playerViewOf(link, 'no-host').status).toBe('downloads-off');
    expect(playerViewOf(link, { status: 'off' }).status).toBe('downloads-off');
    expect(playerViewOf(link, on()).status).toBe('not-listed');
    expect(playerViewOf(link, on(torrent({ files: [] }))).status).toBe('metadata');
    expect(
      playerViewOf(
        link,
        on(torrent({ files: [], state: { status: 'failed', code: 'metadata-timeout', reason: 'none' } })),
      ),
    ).toMatchObject({ status: 'failed', reason: 'none' });
    expect(playerViewOf({ ...link, fileIndex: 5 }, on(torrent())).status).toBe('no-file');
    expect(playerViewOf({ ...link, fileIndex: 0 }, on(torrent())).status).toBe('not-media');
  });
});
