/// <reference types="chrome" />
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { startSwarm, type SwarmContent } from '../test/swarm/swarm';
import { fileRow, opfsDirectories, saveAndHash } from './fixtures/downloads';
import { Cleanup, startSignaling, startTestExit } from './fixtures/network';
import { ARTIFACTS_DIR } from './fixtures/paths';
import { launchClient, launchVolunteer } from './fixtures/roles';

/**
 * Downloads the way a person makes them, on the Downloads page (opened from the popup): a multi-file torrent
 * by magnet, and the same torrent by .torrent file (picked, its files shown first; and arriving by a link as
 * the context menu hands it over), each time with one file left out. The extension's own WebTorrent fetches
 * through a volunteer's browser from an exit that serves torrents; the files saved with the browser's
 * downloads have the swarm content's hashes. Protect stays off and no companion runs. The local swarm
 * (tracker, WebTorrent and aria2 seeders) saw no address but the exit's.
 */

const EXIT_ADDRESS = '127.0.0.25';
/** The file left out each time: the default content's middle file, with a piece of its own (no boundary). */
const SKIPPED = 'video/subtitles.bin';

function torrentWithTrackers(content: SwarmContent, trackers: string[]): Buffer {
  const bytes = Buffer.from(content.torrentFile);
  // Bencoded keys are sorted: "announce" and "announce-list" come before the file's "creation date".
  expect(bytes.subarray(0, 16).toString('latin1')).toBe('d13:creation dat');
  const string = (text: string) => `${Buffer.byteLength(text)}:${text}`;
  const announce = `${string('announce')}${string(trackers[0]!)}${string('announce-list')}l${trackers
    .map((url) => `l${string(url)}e`)
    .join('')}e`;
  return Buffer.concat([bytes.subarray(0, 1), Buffer.from(announce, 'latin1'), bytes.subarray(1)]);
}

test('a multi-file torrent by magnet and by .torrent, one file left out, through a volunteer and an exit; the swarm sees only the exit', async () => {
  test.setTimeout(300_000);
  const cleanup = new Cleanup();
  try {
    const swarm = await startSwarm();
    cleanup.push(() => swarm.stop());
    const { content } = swarm;
    const kept = content.files.filter((file) => file.path !== SKIPPED);
    expect(kept.length).toBe(content.files.length - 1);
    const signaling = await startSignaling(cleanup);
    await startTestExit(cleanup, {
      signalingUrl: signaling.url,
      address: EXIT_ADDRESS,
      name: 'torrent-exit',
      allowDestinations: swarm.allowDestinations,
      torrents: true,
    });
    await launchVolunteer(cleanup, 'downloads-volunteer', { signalingUrl: signaling.url });
    const client = await launchClient(cleanup, 'downloads-client', { signalingUrl: signaling.url });

    // The context menu's entry for magnet and .torrent links exists (updating an unknown id fails).
    await client.serviceWorker.evaluate(() => chrome.contextMenus.update('underpass-download-link', {}));

    const popup = await client.popup();
    const opened = client.context.waitForEvent('page');
    await popup.getByTestId('open-downloads').click();
    const page = await opened;
    await page.waitForLoadState();
    expect(page.url()).toContain('/downloads.html');
    await page.setViewportSize({ width: 900, height: 800 });

    // ── By magnet: files chosen once the metadata has named them ──────────────────────────────────────────
    await page.getByTestId('magnet-input').fill(swarm.magnet());
    await page.getByTestId('magnet-add').click();
    const row = page.getByTestId('torrent-row');
    await expect(row).toHaveCount(1);
    await expect(row).toHaveAttribute('data-infohash', content.infoHash);
    await expect(row.getByTestId('torrent-file')).toHaveCount(content.files.length);
    await fileRow(page, `${content.name}/${SKIPPED}`).getByTestId('file-select').uncheck();
    // The host took the choice (the page shows the host's state, not its own guess).
    await expect(fileRow(page, `${content.name}/${SKIPPED}`)).toHaveAttribute('data-selected', 'false');
    for (const file of kept)
      await expect(fileRow(page, `${content.name}/${file.path}`)).toHaveAttribute('data-done', 'true', {
        timeout: 90_000,
      });
    await expect(page.getByTestId('downloads-path')).toContainText('Connected');
    await page.screenshot({ path: join(ARTIFACTS_DIR, 'downloads-magnet-done.png'), fullPage: true });
    for (const file of kept)
      expect(await saveAndHash(page, `${content.name}/${file.path}`), file.path).toBe(file.sha256);

    // The popup's line lists it.
    await popup.reload();
    await expect(popup.getByTestId('downloads-line')).toBeVisible();
    await popup.screenshot({ path: join(ARTIFACTS_DIR, 'downloads-popup-line.png') });

    await row.getByTestId('torrent-remove').click();
    await expect(page.getByTestId('downloads-empty')).toBeVisible();
    // Its pieces went with it: the same torrent added again below starts from nothing.
    await expect
      .poll(
        async () =>
          (await opfsDirectories(page)).filter((name) => name.startsWith(`underpass-${content.infoHash}`)),
        { timeout: 10_000 },
      )
      .toEqual([]);

    // ── By a link, as "Download with Underpass" hands one over: the .torrent is fetched and shown first ──
    const torrentFile = torrentWithTrackers(content, [swarm.tracker.httpUrl, swarm.tracker.udpUrl]);
    const server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/x-bittorrent' });
      response.end(torrentFile);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const link = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${content.name}.torrent`;
    await page.evaluate((url) => (location.hash = `add=${encodeURIComponent(url)}`), link);
    const preview = page.getByTestId('torrent-preview');
    await expect(preview).toHaveAttribute('data-infohash', content.infoHash);
    await expect(preview.getByTestId('preview-file')).toHaveCount(content.files.length);
    expect(new URL(page.url()).hash).toBe(''); // the link is taken once, not again on a reload
    await preview.getByTestId('preview-cancel').click();
    await expect(preview).toHaveCount(0);

    // ── By a picked .torrent file: one file unticked before anything is fetched ───────────────────────────
    await page.getByTestId('torrent-file-input').setInputFiles({
      name: `${content.name}.torrent`,
      mimeType: 'application/x-bittorrent',
      buffer: torrentFile,
    });
    await expect(preview.getByTestId('preview-file')).toHaveCount(content.files.length);
    await preview
      .getByTestId('preview-file')
      .and(page.locator(`[data-path="${content.name}/${SKIPPED}"]`))
      .getByTestId('preview-file-select')
      .uncheck();
    await page.screenshot({ path: join(ARTIFACTS_DIR, 'downloads-preview.png'), fullPage: true });
    await preview.getByTestId('preview-start').click();
    await expect(row).toHaveCount(1);
    await expect(row).toHaveAttribute('data-infohash', content.infoHash);
    await expect(fileRow(page, `${content.name}/${SKIPPED}`)).toHaveAttribute('data-selected', 'false');
    for (const file of kept)
      await expect(fileRow(page, `${content.name}/${file.path}`)).toHaveAttribute('data-done', 'true', {
        timeout: 90_000,
      });
    // Chosen before the first wire: the file left out was never fetched (it has a piece of its own).
    await expect(fileRow(page, `${content.name}/${SKIPPED}`)).toHaveAttribute('data-done', 'false');
    await page.screenshot({ path: join(ARTIFACTS_DIR, 'downloads-torrent-done.png'), fullPage: true });
    for (const file of kept)
      expect(await saveAndHash(page, `${content.name}/${file.path}`), file.path).toBe(file.sha256);

    const contacts = await swarm.contacts();
    expect(contacts.length).toBeGreaterThan(0);
    expect(new Set(contacts.map((contact) => contact.from))).toEqual(new Set([EXIT_ADDRESS]));

    // Removing the last torrent lets Downloads go.
    await row.getByTestId('torrent-remove').click();
    await expect(page.getByTestId('downloads-empty')).toBeVisible();
  } finally {
    await cleanup.run();
  }
});
