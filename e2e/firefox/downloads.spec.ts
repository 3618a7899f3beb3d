import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, test } from '@playwright/test';
import type { Browser as ExtensionApi } from 'webextension-polyfill';
import { startSwarm } from '../../test/swarm/swarm';
import {
  fileRowSelector,
  opfsDirectoriesInFirefox,
  saveAndHashInFirefox,
  waitForBadge,
  waitForFileRow,
} from '../fixtures/firefox-downloads';
import { clickSwitch, firefoxScreenshot, waitForSwitchStatus, webRtcPolicy } from '../fixtures/firefox-ui';
import { launchFirefoxClient, launchFirefoxDownloader } from '../fixtures/firefox-roles';
import { Cleanup, startSignaling, startTestExit } from '../fixtures/network';
import type { SignalingServer } from '../../signaling-server/src/server';
import type { Page } from 'puppeteer-core';
import { launchVolunteer } from '../fixtures/roles';

/**
 * Downloads in real Firefox: the add-on's WebTorrent runs in the MV2 background page, and the Downloads page
 * reaches it with the same runtime messages as Chrome's offscreen document (lib/in-page-bridge.ts). A
 * multi-file torrent by magnet, pasted in the Downloads page opened from the popup, one file left out, paused
 * and resumed, fetched through a Chromium volunteer's relay (its bandwidth capped, so the download lasts long
 * enough to be seen under way) from an exit that serves torrents; the files saved with Firefox's downloads
 * have the swarm content's hashes. Protect stays off and no companion is installed. The local swarm (tracker,
 * WebTorrent and aria2 seeders) saw no address but the exit's, and the magnet's `xs`/`ws` sources, on a server
 * only Firefox could reach, were never asked.
 */

const EXIT_ADDRESS = '127.0.0.27';
/**
 * The swarm's default content, with its video named as one (random bytes: the player says it cannot read them).
 * The file left out has a piece of its own.
 */
const FILES = [
  { path: 'video/movie.webm', length: 700_000 },
  { path: 'video/subtitles.bin', length: 90_000 },
  { path: 'readme.bin', length: 500_000 },
];
const SKIPPED = 'video/subtitles.bin';
const VIDEO = 'video/movie.webm';
/** Slow enough (~20 s for the 1.2 MB wanted) for the badge and a pause to be seen under way. */
const VOLUNTEER_KIBPS = 64;

/** The exit's pace for the test with Protect on: bytes a second, both directions of a session together. */
const EXIT_BYTES_PER_SECOND = 60_000;

test('Firefox: a multi-file torrent by magnet, one file left out, paused and resumed, saved; the swarm sees only the exit', async () => {
  test.setTimeout(240_000);
  const cleanup = new Cleanup();
  try {
    const swarm = await startSwarm({ files: FILES });
    cleanup.push(() => swarm.stop());
    const { content } = swarm;
    const kept = content.files.filter((file) => file.path !== SKIPPED);
    expect(kept.length).toBe(content.files.length - 1);

    // Where the magnet's `xs` and `ws` point: a server on 127.0.0.1, which the exit may not reach (its policy
    // allows only the swarm's addresses), so any request here would come from Firefox.
    const sourceRequests: string[] = [];
    const sources = createServer((request, response) => {
      sourceRequests.push(`${request.method} ${request.url}`);
      response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => sources.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => sources.close(() => resolve())));
    const sourceUrl = `http://127.0.0.1:${(sources.address() as AddressInfo).port}`;
    const magnet =
      `${swarm.magnet()}&xs=${encodeURIComponent(`${sourceUrl}/${content.name}.torrent`)}` +
      `&ws=${encodeURIComponent(`${sourceUrl}/seed/`)}`;

    const signaling = await startSignaling(cleanup);
    await startTestExit(cleanup, {
      signalingUrl: signaling.url,
      address: EXIT_ADDRESS,
      name: 'ff-torrent-exit',
      allowDestinations: swarm.allowDestinations,
      torrents: true,
    });
    await launchVolunteer(cleanup, 'ff-downloads-volunteer', {
      signalingUrl: signaling.url,
      volunteerBandwidthKiBps: VOLUNTEER_KIBPS,
    });
    const client = await launchFirefoxDownloader(cleanup, 'downloads-client', {
      signalingUrl: signaling.url,
    });

    // ── The Downloads page, opened from the popup ──
    const popup = await client.popup();
    // The context menu's entry for magnet and .torrent links exists (updating an unknown id fails).
    await popup.evaluate(async () => {
      const api = (globalThis as unknown as { browser: ExtensionApi }).browser;
      await api.contextMenus.update('underpass-download-link', {});
    });
    const page = await client.tabOpenedBy('/downloads.html', () =>
      popup.locator('[data-testid="open-downloads"]').click(),
    );
    await page.setViewport({ width: 900, height: 800 });
    await page.waitForSelector('[data-testid="magnet-input"]');

    // ── By magnet: files chosen once the metadata has named them ──
    await page.locator('[data-testid="magnet-input"]').fill(magnet);
    await page.locator('[data-testid="magnet-add"]').click();
    const row = `[data-testid="torrent-row"][data-infohash="${content.infoHash}"]`;
    await page.waitForSelector(row, { timeout: 30_000 });
    await page.waitForFunction(
      (selector, count) =>
        document.querySelectorAll(`${selector} [data-testid="torrent-file"]`).length === count,
      { timeout: 90_000 },
      row,
      content.files.length,
    );
    const skipped = `${content.name}/${SKIPPED}`;
    await page.locator(`${fileRowSelector(skipped)} [data-testid="file-select"]`).click();
    // The host took the choice (the page shows the host's state, not its own guess).
    await waitForFileRow(page, skipped, 'data-selected', 'false');

    // ── Under way: the badge counts it and the popup's line shows it; a pause holds it, a resume goes on ──
    await popup.waitForFunction(
      () => document.querySelector('[data-testid="downloads-line"]')?.getAttribute('data-active') === '1',
      { timeout: 30_000 },
    );
    await waitForBadge(popup, '↓1');
    await firefoxScreenshot(popup, 'firefox-downloads-popup-line');
    await page.locator(`${row} [data-testid="torrent-pause"]`).click();
    await page.waitForSelector(`${row}[data-state="paused"]`, { timeout: 15_000 });
    await popup.waitForFunction(
      () => document.querySelector('[data-testid="downloads-line"]')?.getAttribute('data-active') === '0',
      { timeout: 15_000 },
    );
    await waitForBadge(popup, '');
    await page.locator(`${row} [data-testid="torrent-resume"]`).click();

    for (const file of kept)
      await waitForFileRow(page, `${content.name}/${file.path}`, 'data-done', 'true', 90_000);
    await page.waitForSelector(`${row}[data-state="done"]`, { timeout: 30_000 });
    expect(
      await page.$eval('[data-testid="downloads-path"]', (element) => element.textContent ?? ''),
    ).toContain('Connected');
    await firefoxScreenshot(page, 'firefox-downloads-done');
    for (const file of kept)
      expect(await saveAndHashInFirefox(page, `${content.name}/${file.path}`), file.path).toBe(file.sha256);

    // ── The player reads the file's container itself in Firefox: random bytes named .webm get words, not a black box ──
    const play = await page.$eval(
      `${fileRowSelector(`${content.name}/${VIDEO}`)} [data-testid="file-play"]`,
      (link) => link.getAttribute('href') ?? '',
    );
    expect(play).toMatch(/^\/player\.html\?infoHash=[0-9a-f]{40}&file=\d+$/);
    const player = await client.extensionPage(play.slice(1));
    await player.waitForSelector('[data-testid="player-error"][data-code="unsupported-format"]', {
      timeout: 15_000,
    });
    expect(await player.$eval('[data-testid="player-error"]', (element) => element.textContent)).toBe(
      'movie.webm is in a format the player cannot read while it downloads. Once it is done, save it from the Downloads page and open it from your downloads.',
    );
    expect(await player.$eval('[data-testid="player-title"]', (element) => element.textContent)).toBe(
      'movie.webm',
    );
    await firefoxScreenshot(player, 'firefox-player-not-a-video');
    await player.close();

    // ── Who saw whom: the swarm only the exit; the magnet's own sources nobody ──
    const contacts = await swarm.contacts();
    expect(contacts.length).toBeGreaterThan(0);
    expect(new Set(contacts.map((contact) => contact.from))).toEqual(new Set([EXIT_ADDRESS]));
    expect(sourceRequests).toEqual([]);

    // ── Removing it takes its pieces too ──
    await page.locator(`${row} [data-testid="torrent-remove"]`).click();
    await page.waitForSelector('[data-testid="downloads-empty"]', { timeout: 15_000 });
    await expect
      .poll(
        async () =>
          (await opfsDirectoriesInFirefox(page)).filter((name) =>
            name.startsWith(`underpass-${content.infoHash}`),
          ),
        { timeout: 10_000 },
      )
      .toEqual([]);
  } finally {
    await cleanup.run();
  }
});

/**
 * Firefox's WebRTC policy while Protect is on (`proxy_only`) binds the background page's new links too, so
 * Downloads ride Protect's path then (features/downloads/downloads-route.ts): a session of their own over
 * Protect's link, to Protect's exit, which serves torrents. The download runs and finishes while Protect stays
 * on and the policy stays `proxy_only`, and the broker made no path for Firefox meanwhile: no new link. Then the
 * same torrent again, by a picked .torrent file (its bytes cross to the background page in the add command) with
 * one file unticked before anything is fetched, started while Protect is on, carried on over Protect's next path
 * after "New path", then, once Protect goes off mid-download, over Downloads' own path again, keeping what it
 * had: that file is never completed, the others have the swarm's hashes. The swarm sees only the exit; the
 * magnet's `xs`/`ws` sources nobody.
 */
test('Firefox: while Protect is on, Downloads ride its path and finish with no new link; a download follows New path, then moves off when Protect goes off', async () => {
  test.setTimeout(240_000);
  const cleanup = new Cleanup();
  try {
    const swarm = await startSwarm();
    cleanup.push(() => swarm.stop());
    const { content } = swarm;
    const sources = await startSourceWitness(cleanup);
    const magnet = `${swarm.magnet()}&xs=${encodeURIComponent(`${sources.url}/${content.name}.torrent`)}&ws=${encodeURIComponent(`${sources.url}/seed/`)}`;
    const signaling = await startSignaling(cleanup);
    await startTestExit(cleanup, {
      signalingUrl: signaling.url,
      address: EXIT_ADDRESS,
      name: 'ff-torrent-exit-protect',
      allowDestinations: swarm.allowDestinations,
      torrents: true,
      // Slow enough (~20 s for the torrent) for "New path" and Protect off while the second download runs.
      limits: { bytesPerSecond: EXIT_BYTES_PER_SECOND },
    });
    await launchVolunteer(cleanup, 'ff-downloads-protect-volunteer', { signalingUrl: signaling.url });
    const client = await launchFirefoxClient(cleanup, 'downloads-protect-client', {
      signalingUrl: signaling.url,
    });
    const popup = await client.popup();
    await clickSwitch(popup, 'protect');
    await waitForSwitchStatus(popup, 'protect', 'on', 90_000);
    expect(await webRtcPolicy(popup)).toBe('proxy_only');
    // Every WebRTC link of Firefox's is one the broker made for a path it asked for.
    const pathsBefore = await pathRequests(signaling);

    const page = await client.extensionPage('downloads.html');
    await page.setViewport({ width: 900, height: 800 });
    await page.locator('[data-testid="magnet-input"]').fill(magnet);
    await page.locator('[data-testid="magnet-add"]').click();
    await page.waitForSelector('[data-testid="downloads-path"][data-shares-protect="true"]', {
      timeout: 60_000,
    });
    expect(
      await page.$eval('[data-testid="downloads-path"]', (element) => element.textContent ?? ''),
    ).toContain("over Protect's path");
    for (const file of content.files)
      await waitForFileRow(page, `${content.name}/${file.path}`, 'data-done', 'true', 90_000);
    const row = `[data-testid="torrent-row"][data-infohash="${content.infoHash}"]`;
    await page.waitForSelector(`${row}[data-state="done"]`, { timeout: 30_000 });
    await firefoxScreenshot(page, 'firefox-downloads-over-protect');
    // Protect stayed on, pages' WebRTC stayed held, and Firefox asked for no path: no new link was made.
    await popup.bringToFront();
    await waitForSwitchStatus(popup, 'protect', 'on');
    expect(await webRtcPolicy(popup)).toBe('proxy_only');
    expect(await pathRequests(signaling)).toBe(pathsBefore);
    await page.bringToFront();
    for (const file of content.files)
      expect(await saveAndHashInFirefox(page, `${content.name}/${file.path}`), file.path).toBe(file.sha256);
    expect(new Set((await swarm.contacts()).map((contact) => contact.from))).toEqual(new Set([EXIT_ADDRESS]));
    expect(sources.requests).toEqual([]);
    await page.locator(`${row} [data-testid="torrent-remove"]`).click();
    await page.waitForSelector('[data-testid="downloads-empty"]', { timeout: 15_000 });

    // ── By a picked .torrent file: one file unticked before anything is fetched ──
    // puppeteer's uploadFile (BiDi `input.setFiles`) leaves the hidden input empty in Firefox 153, so the file is
    // handed to the input the way a picker does: its FileList set, then `change`.
    await page.evaluate(
      (name, base64) => {
        const input = document.querySelector<HTMLInputElement>('[data-testid="torrent-file-input"]')!;
        const bytes = Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, { type: 'application/x-bittorrent' }));
        input.files = transfer.files;
        input.dispatchEvent(new Event('change', { bubbles: true }));
      },
      `${content.name}.torrent`,
      Buffer.from(content.torrentFile).toString('base64'),
    );
    const skipped = `${content.name}/${SKIPPED}`;
    const preview = '[data-testid="torrent-preview"]';
    await page.waitForFunction(
      (selector, count) =>
        document.querySelectorAll(`${selector} [data-testid="preview-file"]`).length === count,
      { timeout: 15_000 },
      preview,
      content.files.length,
    );
    await page
      .locator(
        `${preview} [data-testid="preview-file"][data-path="${skipped}"] [data-testid="preview-file-select"]`,
      )
      .click();
    await page.locator(`${preview} [data-testid="preview-start"]`).click();
    await waitForFileRow(page, skipped, 'data-selected', 'false');
    await page.waitForSelector('[data-testid="downloads-path"][data-shares-protect="true"]', {
      timeout: 30_000,
    });
    const kept = content.files.filter((candidate) => candidate.path !== SKIPPED);
    const keptBytes = kept.reduce((sum, file) => sum + file.length, 0);
    let had = 0;
    await expect
      .poll(async () => (had = await downloadedBytes(page, content.infoHash)), { timeout: 30_000 })
      .toBeGreaterThan(0);
    expect(had).toBeLessThan(keptBytes);

    // ── "New path" mid-download: Protect's next path carries it on (the old one, and its wire, are let go) ──
    const asked = await pathRequests(signaling);
    await popup.bringToFront();
    await popup.locator('[data-testid="protect-new-path"]').click();
    await expect.poll(() => pathRequests(signaling), { timeout: 30_000 }).toBeGreaterThan(asked);
    await waitForSwitchStatus(popup, 'protect', 'on');
    await page.bringToFront();
    await page.waitForSelector('[data-testid="downloads-path"][data-shares-protect="true"]', {
      timeout: 30_000,
    });
    expect(await downloadedBytes(page, content.infoHash)).toBeGreaterThanOrEqual(had);
    const before = had;
    await expect
      .poll(async () => (had = await downloadedBytes(page, content.infoHash)), { timeout: 30_000 })
      .toBeGreaterThan(before);
    expect(had).toBeLessThan(keptBytes);
    expect(await webRtcPolicy(page)).toBe('proxy_only');

    // ── Protect off mid-download: Downloads build their own path and go on from what they had ──
    const verified = had;
    await popup.bringToFront();
    await clickSwitch(popup, 'protect');
    await waitForSwitchStatus(popup, 'protect', 'off');
    await page.bringToFront();
    await page.waitForSelector('[data-testid="downloads-path"][data-shares-protect="false"]', {
      timeout: 30_000,
    });
    // Nothing it had was dropped in the move (WebTorrent keeps it; the new wire asks only for the rest).
    expect(await downloadedBytes(page, content.infoHash)).toBeGreaterThanOrEqual(verified);
    expect(await pathRequests(signaling)).toBeGreaterThan(pathsBefore);
    for (const file of kept)
      await waitForFileRow(page, `${content.name}/${file.path}`, 'data-done', 'true', 60_000);
    await page.waitForSelector(`${row}[data-state="done"]`, { timeout: 30_000 });
    // Chosen before the first wire: the file left out was never fetched (it has a piece of its own).
    await waitForFileRow(page, skipped, 'data-done', 'false');
    for (const file of kept)
      expect(await saveAndHashInFirefox(page, `${content.name}/${file.path}`), file.path).toBe(file.sha256);
    const contacts = await swarm.contacts();
    expect(new Set(contacts.map((contact) => contact.from))).toEqual(new Set([EXIT_ADDRESS]));
    expect(sources.requests).toEqual([]);
  } finally {
    await cleanup.run();
  }
});

/**
 * A server standing where a magnet's `xs` and `ws` point, on 127.0.0.1, which the exit may not reach for the
 * swarm (its policy allows only the swarm's addresses): any request it gets came from Firefox.
 */
async function startSourceWitness(cleanup: Cleanup): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

/** Paths the broker was asked for (made or refused): each of a client's WebRTC links starts as one. */
async function pathRequests(signaling: SignalingServer): Promise<number> {
  const text = await signaling.metrics.text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (/^underpass_signaling_(matches|unmatched_requests)_total[{ ]/.test(line))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** The torrent's verified bytes, as the engines' host reports them to its pages. */
async function downloadedBytes(page: Page, infoHash: string): Promise<number> {
  return page.evaluate(async (wanted: string) => {
    const api = (globalThis as unknown as { browser: ExtensionApi }).browser;
    const reply = (await api.runtime.sendMessage({ target: 'offscreen', type: 'status' })) as {
      ok?: boolean;
      status?: { downloads?: { torrents?: { infoHash: string; downloaded: number }[] } };
    };
    return reply.status?.downloads?.torrents?.find((torrent) => torrent.infoHash === wanted)?.downloaded ?? 0;
  }, infoHash);
}
