/// <reference types="chrome" />
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { startSwarm } from '../test/swarm/swarm';
import { Cleanup, startSignaling, startTestExit } from './fixtures/network';
import { ARTIFACTS_DIR } from './fixtures/paths';
import { launchClient, launchVolunteer } from './fixtures/roles';
import { makeVideo } from './fixtures/video';

/**
 * A video plays while it downloads: the Downloads page takes a magnet of a torrent with a real WebM video
 * (made at test time, with Chromium's encoder), the player page plays the file from the user's own
 * WebTorrent while pieces still come through a volunteer's browser from an exit, and a seek forward plays
 * from there. The volunteer's bandwidth cap (the same one a person sets in the options) keeps the path slow
 * enough that the file is far from complete when the video starts. Removing the torrent stops the player
 * (its media element goes) with a sentence saying why.
 */

const EXIT_ADDRESS = '127.0.0.26';
/**
 * 24 s of VP8 asked at 0.6 Mbit/s (noise makes the encoder overshoot: about 3 MB), which the capped
 * volunteer carries in about half a minute; playing starts after a few hundred KB.
 */
const VIDEO = { seconds: 24, fps: 15, width: 320, height: 240, bitsPerSecond: 600_000 };
const VOLUNTEER_KIBPS = 128;
const VIDEO_PATH = 'clip/movie.webm';
const SEEK_TO_S = 16;

type Snapshot = {
  currentTime: number;
  readyState: number;
  seeking: boolean;
  paused: boolean;
  fileDownloaded: number;
  fileLength: number;
};

/** The player's media element and, right after, the host's word on how much of the file is verified. */
async function snapshot(player: Page, infoHash: string, fileIndex: number): Promise<Snapshot> {
  return player.evaluate(
    async ({ infoHash, fileIndex }) => {
      const media = document.querySelector<HTMLMediaElement>('[data-testid="player-media"]');
      if (!media) throw new Error('no media element');
      const { currentTime, readyState, seeking, paused } = media;
      const reply = (await chrome.runtime.sendMessage({ target: 'offscreen', type: 'status' })) as {
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
        fileDownloaded: file?.downloaded ?? -1,
        fileLength: file?.length ?? -1,
      };
    },
    { infoHash, fileIndex },
  );
}

test('a video plays while it downloads through a volunteer and an exit, and seeks', async () => {
  test.setTimeout(240_000);
  const cleanup = new Cleanup();
  try {
    const signaling = await startSignaling(cleanup);
    await launchVolunteer(cleanup, 'media-volunteer', {
      signalingUrl: signaling.url,
      volunteerBandwidthKiBps: VOLUNTEER_KIBPS,
    });
    const client = await launchClient(cleanup, 'media-client', { signalingUrl: signaling.url });

    const video = await makeVideo(client.context, VIDEO);
    expect(video.length).toBeGreaterThan(2_000_000);
    const swarm = await startSwarm({
      files: [
        { path: VIDEO_PATH, data: video },
        { path: 'clip/notes.txt', length: 10_000 },
      ],
    });
    cleanup.push(() => swarm.stop());
    await startTestExit(cleanup, {
      signalingUrl: signaling.url,
      address: EXIT_ADDRESS,
      name: 'media-exit',
      allowDestinations: swarm.allowDestinations,
      torrents: true,
    });

    // ── The magnet, pasted in the Downloads page ──
    const popup = await client.popup();
    const opened = client.context.waitForEvent('page');
    await popup.getByTestId('open-downloads').click();
    const downloads = await opened;
    await downloads.waitForLoadState();
    await downloads.getByTestId('magnet-input').fill(swarm.magnet());
    const added = Date.now();
    await downloads.getByTestId('magnet-add').click();
    const row = downloads.getByTestId('torrent-row');
    await expect(row).toHaveAttribute('data-state', 'downloading', { timeout: 90_000 });
    const infoHash = swarm.content.infoHash;
    const fileIndex = await downloads.evaluate(
      async ({ infoHash, path }) => {
        const reply = (await chrome.runtime.sendMessage({ target: 'offscreen', type: 'status' })) as {
          status: {
            downloads: { torrents?: { infoHash: string; files: { index: number; path: string }[] }[] };
          };
        };
        const torrent = reply.status.downloads.torrents?.find((candidate) => candidate.infoHash === infoHash);
        return torrent?.files.find((file) => file.path === path)?.index ?? -1;
      },
      { infoHash, path: `${swarm.content.name}/${VIDEO_PATH}` },
    );
    expect(fileIndex).toBeGreaterThanOrEqual(0);

    // ── The player, while the file downloads ──
    const player = await client.context.newPage();
    await player.setViewportSize({ width: 800, height: 600 });
    await player.goto(
      `chrome-extension://${client.extensionId}/player.html?infoHash=${infoHash}&file=${fileIndex}`,
    );
    await expect(player.getByTestId('player-title')).toHaveText('movie.webm');
    await expect(player).toHaveTitle('movie.webm');
    const media = player.getByTestId('player-media');
    await expect(media).toBeVisible();
    // Muted, so the browser's autoplay policy lets it start without a click.
    await media.evaluate((element: HTMLMediaElement) => {
      element.muted = true;
      void element.play().catch(() => {});
    });

    let playing: Snapshot | undefined;
    await expect
      .poll(
        async () => {
          playing = await snapshot(player, infoHash, fileIndex);
          return playing.currentTime > 1 && playing.readyState >= 3 && !playing.paused;
        },
        { timeout: 90_000, intervals: [250] },
      )
      .toBe(true);
    const startedAfterMs = Date.now() - added;
    console.log(
      `media e2e: playing ${playing!.currentTime.toFixed(2)} s in, ${startedAfterMs} ms after the magnet, with ` +
        `${playing!.fileDownloaded} of ${playing!.fileLength} bytes downloaded`,
    );
    // Still downloading at that moment: the file is far from complete.
    expect(playing!.fileLength).toBe(video.length);
    expect(playing!.fileDownloaded).toBeLessThan(playing!.fileLength);
    await expect(player.getByTestId('player-state')).toContainText('Playing while it downloads');
    await player.screenshot({ path: join(ARTIFACTS_DIR, 'player-playing-while-downloading.png') });

    // ── A seek forward plays from there ──
    const seekAt = Date.now();
    await media.evaluate((element: HTMLMediaElement, to: number) => {
      element.currentTime = to;
    }, SEEK_TO_S);
    let seeked: Snapshot | undefined;
    await expect
      .poll(
        async () => {
          seeked = await snapshot(player, infoHash, fileIndex);
          return !seeked.seeking && seeked.readyState >= 3 && seeked.currentTime > SEEK_TO_S + 1;
        },
        { timeout: 90_000, intervals: [250] },
      )
      .toBe(true);
    console.log(
      `media e2e: after the seek, playing at ${seeked!.currentTime.toFixed(2)} s ${Date.now() - seekAt} ms ` +
        `later, with ${seeked!.fileDownloaded} of ${seeked!.fileLength} bytes downloaded`,
    );
    expect(seeked!.currentTime).toBeLessThan(VIDEO.seconds);
    await expect(player.getByTestId('player-error')).toHaveCount(0);
    await player.screenshot({ path: join(ARTIFACTS_DIR, 'player-after-seek.png') });

    // ── Who may read the file: only a media element of the extension's own pages ──
    const mediaUrl = `chrome-extension://${client.extensionId}/media/${infoHash}/${fileIndex}`;
    expect(
      await player.evaluate(async (url) => {
        const response = await fetch(url);
        return [response.status, response.headers.get('x-underpass-error')];
      }, mediaUrl),
    ).toEqual([403, 'forbidden']);
    const website = await client.context.newPage();
    await website.route('http://localhost/some-page', (route) =>
      route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>a website</title>' }),
    );
    await website.goto('http://localhost/some-page');
    const fromWebsite = await website.evaluate(async (url) => {
      try {
        return `answered ${(await fetch(url)).status}`;
      } catch {
        return 'refused';
      }
    }, mediaUrl);
    expect(fromWebsite).toBe('refused');
    await website.close();

    // ── The download completes; removing it stops the player with a reason ──
    await expect(row).toHaveAttribute('data-state', 'done', { timeout: 120_000 });
    console.log(`media e2e: download done ${Date.now() - added} ms after the magnet`);
    // It was the only torrent, so the Downloads page also turns Downloads off: either sentence is right.
    await row.getByTestId('torrent-remove').click();
    await expect(player.getByTestId('player-message')).toHaveText(
      /^(This torrent is no longer in your downloads\.|Downloads are not running.*)$/,
    );
    await expect(media).toHaveCount(0);

    // A link that names no torrent says so.
    await player.goto(`chrome-extension://${client.extensionId}/player.html?infoHash=nope&file=0`);
    await expect(player.getByTestId('player-message')).toContainText('not valid');
  } finally {
    await cleanup.run();
  }
});
