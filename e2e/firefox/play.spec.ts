import { expect, test } from '@playwright/test';
import type { Page } from 'puppeteer-core';
import type { Browser as ExtensionApi } from 'webextension-polyfill';
import { startSwarm } from '../../test/swarm/swarm';
import { fileRowSelector } from '../fixtures/firefox-downloads';
import { launchFirefoxDownloader } from '../fixtures/firefox-roles';
import { firefoxScreenshot } from '../fixtures/firefox-ui';
import { Cleanup, startSignaling, startTestExit } from '../fixtures/network';
import { launchVolunteer } from '../fixtures/roles';
import { makeUndecodableWebm, makeVideo, type VideoOptions } from '../fixtures/video';

/**
 * Playing while downloading in real Firefox, where the player page feeds its media element a MediaSource
 * from the background page's media server (features/downloads/media-source-player.ts): a torrent with an
 * H.264 MP4 whose index (`moov`) is at the end, as recorders leave it, a VP8 WebM and a text file, made at
 * test time and fetched through a Chromium volunteer whose bandwidth cap keeps the download slow. The MP4
 * plays while it is far from complete, and a seek forward plays from there; so does the WebM; the text file,
 * a WebM whose frames cannot be decoded and the removed torrent get the player's words.
 */

const EXIT_ADDRESS = '127.0.0.28';
/** Noise frames: each file is about bitrate × seconds (H.264 from OpenH264 overshoots its bitrate ×2–3). */
const MP4: VideoOptions = {
  seconds: 20,
  fps: 12,
  width: 240,
  height: 176,
  bitsPerSecond: 400_000,
  container: 'mp4',
  index: 'end',
};
const WEBM: VideoOptions = { seconds: 20, fps: 12, width: 240, height: 176, bitsPerSecond: 500_000 };
const VOLUNTEER_KIBPS = 160;
const SEEK_TO_S = 14;

type Snapshot = {
  currentTime: number;
  readyState: number;
  seeking: boolean;
  paused: boolean;
  error: number | null;
  fileDownloaded: number;
  fileLength: number;
};

/** The player's media element and, right after, the host's word on how much of the file is verified. */
async function snapshot(player: Page, infoHash: string, fileIndex: number): Promise<Snapshot> {
  return player.evaluate(
    async (infoHash: string, fileIndex: number) => {
      const media = document.querySelector<HTMLMediaElement>('[data-testid="player-media"]');
      if (!media) throw new Error('no media element');
      const { currentTime, readyState, seeking, paused } = media;
      const api = (globalThis as unknown as { browser: ExtensionApi }).browser;
      const reply = (await api.runtime.sendMessage({ target: 'offscreen', type: 'status' })) as {
        status: {
          downloads: {
            torrents?: { infoHash: string; files: { index: number; downloaded: number; length: number }[] }[];
          };
        };
      };
      const file = reply.status.downloads.torrents
        ?.find((torrent) => torrent.infoHash === infoHash)
        ?.files.find((candidate) => candidate.index === fileIndex);
      return {
        currentTime,
        readyState,
        seeking,
        paused,
        error: media.error?.code ?? null,
        fileDownloaded: file?.downloaded ?? -1,
        fileLength: file?.length ?? -1,
      };
    },
    infoHash,
    fileIndex,
  );
}

/** The file's index in the torrent, as the engines' host lists it. */
async function fileIndexOf(page: Page, infoHash: string, path: string): Promise<number> {
  return page.evaluate(
    async (infoHash: string, path: string) => {
      const api = (globalThis as unknown as { browser: ExtensionApi }).browser;
      const reply = (await api.runtime.sendMessage({ target: 'offscreen', type: 'status' })) as {
        status: {
          downloads: { torrents?: { infoHash: string; files: { index: number; path: string }[] }[] };
        };
      };
      const torrent = reply.status.downloads.torrents?.find((candidate) => candidate.infoHash === infoHash);
      return torrent?.files.find((file) => file.path === path)?.index ?? -1;
    },
    infoHash,
    path,
  );
}

/** Starts the element muted (so autoplay rules let it) and waits until it plays past `after` seconds. */
async function waitForPlaying(
  player: Page,
  infoHash: string,
  fileIndex: number,
  after: number,
): Promise<Snapshot> {
  await player.waitForSelector('[data-testid="player-media"]', { timeout: 15_000 });
  await player.evaluate(() => {
    const media = document.querySelector<HTMLMediaElement>('[data-testid="player-media"]')!;
    media.muted = true;
    void media.play().catch(() => {});
  });
  let seen: Snapshot | undefined;
  await expect
    .poll(
      async () => {
        seen = await snapshot(player, infoHash, fileIndex);
        if (seen.error !== null) throw new Error(`media error ${seen.error}`);
        const problem = await player
          .$eval('[data-testid="player-error"]', (e) => e.textContent)
          .catch(() => null);
        if (problem) throw new Error(`the player says: ${problem}`);
        return seen.currentTime > after && seen.readyState >= 3 && !seen.paused && !seen.seeking;
      },
      { timeout: 90_000, intervals: [250] },
    )
    .toBe(true);
  return seen!;
}

async function seekAndWait(player: Page, infoHash: string, fileIndex: number, to: number): Promise<Snapshot> {
  await player.evaluate((to: number) => {
    document.querySelector<HTMLMediaElement>('[data-testid="player-media"]')!.currentTime = to;
  }, to);
  return waitForPlaying(player, infoHash, fileIndex, to + 1);
}

test('Firefox: an MP4 with its index at the end and a WebM play while they download, and seek; a text file, undecodable frames and a removed torrent get words', async () => {
  test.setTimeout(300_000);
  const cleanup = new Cleanup();
  try {
    const signaling = await startSignaling(cleanup);
    const volunteer = await launchVolunteer(cleanup, 'ff-play-volunteer', {
      signalingUrl: signaling.url,
      volunteerBandwidthKiBps: VOLUNTEER_KIBPS,
    });
    const mp4 = await makeVideo(volunteer.profile.context, MP4);
    const webm = await makeVideo(volunteer.profile.context, WEBM);
    console.log(`firefox play e2e: mp4 ${mp4.length} bytes, webm ${webm.length} bytes`);
    const swarm = await startSwarm({
      files: [
        { path: 'clip/movie.mp4', data: mp4 },
        { path: 'clip/movie.webm', data: webm },
        { path: 'clip/notes.txt', length: 10_000 },
        { path: 'clip/broken.webm', data: await makeUndecodableWebm(3, 10) },
      ],
    });
    cleanup.push(() => swarm.stop());
    await startTestExit(cleanup, {
      signalingUrl: signaling.url,
      address: EXIT_ADDRESS,
      name: 'ff-play-exit',
      allowDestinations: swarm.allowDestinations,
      torrents: true,
    });
    const client = await launchFirefoxDownloader(cleanup, 'ff-play-client', { signalingUrl: signaling.url });

    // ── The magnet, pasted in the Downloads page ──
    const page = await client.extensionPage('downloads.html');
    await page.waitForSelector('[data-testid="magnet-input"]');
    await page.locator('[data-testid="magnet-input"]').fill(swarm.magnet());
    const added = Date.now();
    await page.locator('[data-testid="magnet-add"]').click();
    const { infoHash, name } = swarm.content;
    const row = `[data-testid="torrent-row"][data-infohash="${infoHash}"]`;
    await page.waitForSelector(`${row}[data-state="downloading"]`, { timeout: 90_000 });
    const mp4Index = await fileIndexOf(page, infoHash, `${name}/clip/movie.mp4`);
    const webmIndex = await fileIndexOf(page, infoHash, `${name}/clip/movie.webm`);
    const textIndex = await fileIndexOf(page, infoHash, `${name}/clip/notes.txt`);
    const brokenIndex = await fileIndexOf(page, infoHash, `${name}/clip/broken.webm`);
    expect(Math.min(mp4Index, webmIndex, textIndex, brokenIndex)).toBeGreaterThanOrEqual(0);

    // ── The MP4, while it downloads: its index is read from the file's end first ──
    const player = await client.extensionPage(`player.html?infoHash=${infoHash}&file=${mp4Index}`);
    await player.setViewport({ width: 800, height: 600 });
    await player.waitForFunction(
      () => document.querySelector('[data-testid="player-title"]')?.textContent === 'movie.mp4',
      { timeout: 15_000 },
    );
    const playing = await waitForPlaying(player, infoHash, mp4Index, 1);
    console.log(
      `firefox play e2e: mp4 playing ${playing.currentTime.toFixed(2)} s in, ${Date.now() - added} ms after the ` +
        `magnet, with ${playing.fileDownloaded} of ${playing.fileLength} bytes downloaded`,
    );
    expect(playing.fileLength).toBe(mp4.length);
    expect(playing.fileDownloaded).toBeLessThan(playing.fileLength);
    expect(
      await player.$eval('[data-testid="player-state"]', (element) => element.textContent ?? ''),
    ).toContain('Playing while it downloads');
    await firefoxScreenshot(player, 'firefox-player-playing-while-downloading');

    // ── A seek forward plays from there (its pieces are fetched first) ──
    const seekAt = Date.now();
    const seeked = await seekAndWait(player, infoHash, mp4Index, SEEK_TO_S);
    console.log(
      `firefox play e2e: mp4 after the seek, playing at ${seeked.currentTime.toFixed(2)} s ` +
        `${Date.now() - seekAt} ms later, with ${seeked.fileDownloaded} of ${seeked.fileLength} bytes downloaded`,
    );
    expect(seeked.currentTime).toBeLessThan(MP4.seconds);
    expect(await player.$('[data-testid="player-error"]')).toBeNull();

    // ── The WebM plays and seeks too ──
    const webmPlayer = await client.extensionPage(`player.html?infoHash=${infoHash}&file=${webmIndex}`);
    const webmPlaying = await waitForPlaying(webmPlayer, infoHash, webmIndex, 1);
    console.log(
      `firefox play e2e: webm playing with ${webmPlaying.fileDownloaded} of ${webmPlaying.fileLength} bytes downloaded`,
    );
    await seekAndWait(webmPlayer, infoHash, webmIndex, SEEK_TO_S);
    expect(await webmPlayer.$('[data-testid="player-error"]')).toBeNull();
    await webmPlayer.close();

    // ── A file that is not audio or video gets words, and no media element ──
    const textPlayer = await client.extensionPage(`player.html?infoHash=${infoHash}&file=${textIndex}`);
    await textPlayer.waitForFunction(
      () =>
        document.querySelector('[data-testid="player-message"]')?.textContent ===
        'notes.txt is not audio or video, so it cannot be played here.',
      { timeout: 15_000 },
    );
    expect(await textPlayer.$('[data-testid="player-media"]')).toBeNull();
    await textPlayer.close();

    // ── A WebM whose frames Firefox cannot decode: the element's own error, in Chrome's words ──
    const brokenPlayer = await client.extensionPage(`player.html?infoHash=${infoHash}&file=${brokenIndex}`);
    await brokenPlayer.waitForSelector('[data-testid="player-error"][data-code="media-3"]', {
      timeout: 60_000,
    });
    expect(await brokenPlayer.$eval('[data-testid="player-error"]', (element) => element.textContent)).toBe(
      'The browser could not decode this file: it may be damaged.',
    );
    await brokenPlayer.close();

    // ── Removing the torrent stops the player with a reason ──
    await page.bringToFront();
    await page.locator(`${row} [data-testid="torrent-remove"]`).click();
    await page.waitForSelector('[data-testid="downloads-empty"]', { timeout: 15_000 });
    // It was the only torrent, so the Downloads page also turns Downloads off: either sentence is right.
    await player.waitForFunction(
      () =>
        /^(This torrent is no longer in your downloads\.|Downloads are not running.*)$/.test(
          document.querySelector('[data-testid="player-message"]')?.textContent ?? '',
        ),
      { timeout: 15_000 },
    );
    expect(await player.$('[data-testid="player-media"]')).toBeNull();
    expect(await page.$(fileRowSelector(`${name}/clip/movie.mp4`))).toBeNull();
  } finally {
    await cleanup.run();
  }
});

/**
 * A longer MP4 (about 150 kB a second of video), its index at the start this time, downloaded faster than it
 * plays (so only the lost path makes it stall) and still far from complete when the path drops.
 */
const LONG_MP4: VideoOptions = { ...MP4, seconds: 40, index: 'start' };
const FIRST_VOLUNTEER_KIBPS = 256;

test('Firefox: when the path drops the player stalls once its buffer runs out, and plays on when a new path is up', async () => {
  test.setTimeout(300_000);
  const cleanup = new Cleanup();
  try {
    const signaling = await startSignaling(cleanup);
    const first = await launchVolunteer(cleanup, 'ff-stall-volunteer-1', {
      signalingUrl: signaling.url,
      volunteerBandwidthKiBps: FIRST_VOLUNTEER_KIBPS,
    });
    const video = await makeVideo(first.profile.context, LONG_MP4);
    const swarm = await startSwarm({ files: [{ path: 'clip/long.mp4', data: video }] });
    cleanup.push(() => swarm.stop());
    await startTestExit(cleanup, {
      signalingUrl: signaling.url,
      address: EXIT_ADDRESS,
      name: 'ff-stall-exit',
      allowDestinations: swarm.allowDestinations,
      torrents: true,
    });
    const client = await launchFirefoxDownloader(cleanup, 'ff-stall-client', { signalingUrl: signaling.url });
    const page = await client.extensionPage('downloads.html');
    await page.waitForSelector('[data-testid="magnet-input"]');
    await page.locator('[data-testid="magnet-input"]').fill(swarm.magnet());
    await page.locator('[data-testid="magnet-add"]').click();
    const { infoHash, name } = swarm.content;
    await page.waitForSelector(
      `[data-testid="torrent-row"][data-infohash="${infoHash}"][data-state="downloading"]`,
      {
        timeout: 90_000,
      },
    );
    const index = await fileIndexOf(page, infoHash, `${name}/clip/long.mp4`);
    const player = await client.extensionPage(`player.html?infoHash=${infoHash}&file=${index}`);
    const before = await waitForPlaying(player, infoHash, index, 1);
    expect(before.fileDownloaded).toBeLessThan(before.fileLength / 2);

    // ── The only volunteer's browser closes: the path is down, the element plays what it has, then waits ──
    await first.profile.closeBrowser();
    let stalled: Snapshot | undefined;
    await expect
      .poll(
        async () => {
          stalled = await snapshot(player, infoHash, index);
          return stalled.readyState <= 2 && !stalled.paused;
        },
        { timeout: 60_000, intervals: [250] },
      )
      .toBe(true);
    console.log(
      `firefox play e2e: stalled at ${stalled!.currentTime.toFixed(2)} s with ${stalled!.fileDownloaded} of ` +
        `${stalled!.fileLength} bytes downloaded`,
    );
    expect(stalled!.fileDownloaded).toBeLessThan(stalled!.fileLength);
    await player.waitForFunction(
      () =>
        document
          .querySelector('[data-testid="player-state"]')
          ?.textContent?.startsWith('The path to the exit is down') === true,
      { timeout: 30_000 },
    );
    expect(await player.$('[data-testid="player-error"]')).toBeNull();

    // ── A new volunteer: Downloads build a new path, the pieces come, and the element plays on ──
    await launchVolunteer(cleanup, 'ff-stall-volunteer-2', { signalingUrl: signaling.url });
    const resumed = await waitForPlaying(player, infoHash, index, stalled!.currentTime + 2);
    console.log(`firefox play e2e: playing again at ${resumed.currentTime.toFixed(2)} s`);
    expect(await player.$('[data-testid="player-error"]')).toBeNull();
  } finally {
    await cleanup.run();
  }
});
