import { describe, expect, it, vi } from 'vitest';
import type { DownloadsEngineState, TorrentProgress } from '../features/downloads/downloads-messages';

/**
 * What the Downloads page, the popup's line and the badge compute from the host's state: time left, the
 * summary of active downloads, the file choice as `downloads-select` takes it, and the badge's count. Strings
 * come from the English locale file (there is no i18n API in Node).
 */

vi.mock('webextension-polyfill', () => ({ default: {} }));
const { etaSeconds, formatDuration, MAX_ETA_SECONDS } = await import('../components/format');
const { summarizeDownloads, wantedBytes } = await import('../features/downloads/downloads-summary');
const { canChooseFiles, selectionCommandFiles, toggled } =
  await import('../features/downloads/file-selection');
const { badgeFor } = await import('../lib/badge');

function torrent(change: Partial<TorrentProgress> = {}): TorrentProgress {
  return {
    infoHash: 'a'.repeat(40),
    name: 'film',
    length: 1_000,
    downloaded: 0,
    remaining: 1_000,
    downloadSpeed: 0,
    peers: 1,
    state: { status: 'downloading' },
    files: [
      { index: 0, path: 'film/a.mp4', length: 600, downloaded: 0, done: false, selected: true },
      { index: 1, path: 'film/b.srt', length: 400, downloaded: 0, done: false, selected: true },
    ],
    ...change,
  };
}

describe('time left', () => {
  it('is remaining ÷ speed, rounded up; nothing without speed, with nothing left, or past the cap', () => {
    expect(etaSeconds(1_000, 300)).toBe(4);
    expect(etaSeconds(0, 300)).toBeUndefined();
    expect(etaSeconds(1_000, 0)).toBeUndefined();
    expect(etaSeconds(Number.NaN, 10)).toBeUndefined();
    expect(etaSeconds(MAX_ETA_SECONDS + 1, 1)).toBeUndefined();
    expect(etaSeconds(MAX_ETA_SECONDS, 1)).toBe(MAX_ETA_SECONDS);
  });

  it('reads in its two largest units', () => {
    expect(formatDuration(0)).toBe('0 s');
    expect(formatDuration(42)).toBe('42 s');
    expect(formatDuration(185)).toBe('3 min 5 s');
    expect(formatDuration(7_260)).toBe('2 h 1 min');
    expect(formatDuration(90_000)).toBe('1 d 1 h');
  });
});

describe('the summary', () => {
  it('counts active torrents (not paused, done or failed) and their progress over the selected files', () => {
    const state: DownloadsEngineState = {
      status: 'on',
      path: { status: 'ready', exitPeerId: 'exit' },
      torrents: [
        torrent({
          infoHash: '1'.repeat(40),
          downloadSpeed: 100,
          downloaded: 300,
          remaining: 300,
          files: [
            { index: 0, path: 'f/a', length: 600, downloaded: 300, done: false, selected: true },
            { index: 1, path: 'f/b', length: 400, downloaded: 0, done: false, selected: false },
          ],
        }),
        torrent({
          infoHash: '2'.repeat(40),
          state: { status: 'waiting' },
          length: 0,
          remaining: 0,
          files: [],
        }),
        torrent({ infoHash: '3'.repeat(40), state: { status: 'paused' }, downloadSpeed: 50 }),
        torrent({ infoHash: '4'.repeat(40), state: { status: 'done' }, remaining: 0 }),
        torrent({
          infoHash: '5'.repeat(40),
          state: { status: 'failed', code: 'too-large', reason: 'too large' },
        }),
      ],
    };
    expect(summarizeDownloads(state)).toEqual({
      listed: 5,
      active: 2,
      failed: 1,
      downloaded: 300,
      wanted: 600,
      speed: 100,
    });
    expect(summarizeDownloads({ status: 'off' }).listed).toBe(0);
  });

  it('wants the whole torrent while every file is selected', () => {
    expect(wantedBytes(torrent())).toBe(1_000);
  });
});

describe('the file choice', () => {
  it('is every file as [], some as sorted indices, none refused', () => {
    expect(selectionCommandFiles(new Set([1, 0, 2]), 3)).toEqual([]);
    expect(selectionCommandFiles(new Set([2, 0]), 3)).toEqual([0, 2]);
    expect(selectionCommandFiles(new Set(), 3)).toBeUndefined();
    expect(selectionCommandFiles(new Set([0, 7]), 3)).toEqual([0]);
    expect([...toggled(new Set([0, 1]), 1, false)]).toEqual([0]);
    expect([...toggled(new Set([0]), 2, true)]).toEqual([0, 2]);
  });

  it('is offered only when every file is listed', () => {
    expect(canChooseFiles(1)).toBe(false);
    expect(canChooseFiles(3)).toBe(true);
    expect(canChooseFiles(1_000)).toBe(false); // the host's list may have been cut there
    expect(canChooseFiles(1_000, 1_000)).toBe(true);
    expect(canChooseFiles(1_000, 1_200)).toBe(false);
  });
});

describe('the badge', () => {
  const off = { status: 'off' } as const;
  it('shows active downloads when Protect is off and no one is relayed for', () => {
    expect(badgeFor({ protect: off, volunteer: off, clientsNow: 0, downloadsActive: 2 })).toMatchObject({
      text: '↓2',
      title: 'Underpass: 2 downloads in progress',
    });
    expect(badgeFor({ protect: off, volunteer: off, clientsNow: 0, downloadsActive: 1 }).title).toBe(
      'Underpass: 1 download in progress',
    );
    expect(badgeFor({ protect: off, volunteer: off, clientsNow: 0, downloadsActive: 0 }).text).toBe('');
  });

  it('puts Protect, then the people relayed for, before downloads', () => {
    expect(
      badgeFor({ protect: { status: 'on' }, volunteer: off, clientsNow: 0, downloadsActive: 3 }).text,
    ).toBe('ON');
    expect(
      badgeFor({ protect: off, volunteer: { status: 'on' }, clientsNow: 4, downloadsActive: 3 }).text,
    ).toBe('4');
  });
});
