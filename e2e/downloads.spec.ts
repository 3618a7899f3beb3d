/// <reference types="chrome" />
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { startSwarm, sha256 } from '../test/swarm/swarm';
import { Cleanup, startSignaling, startTestExit } from './fixtures/network';
import { ARTIFACTS_DIR } from './fixtures/paths';
import { launchClient, launchVolunteer } from './fixtures/roles';

/**
 * A download the way a person makes one: the Downloads page (opened from the popup) takes a magnet, the
 * extension's own WebTorrent fetches it through a volunteer's browser from an exit that serves torrents, and
 * the files saved with the browser's downloads have the swarm content's hashes. Protect stays off and no
 * companion runs. The local swarm (tracker, WebTorrent and aria2 seeders) saw no address but the exit's.
 */

const EXIT_ADDRESS = '127.0.0.25';

/**
 * Saves one file through the page's Save button and resolves to the sha256 of the bytes the browser wrote.
 * The save is found as the browser's one new download (Playwright names saved files by GUID, not by the
 * file's name), complete and on disk.
 */
async function saveAndHash(page: Page, filePath: string): Promise<string> {
  const known = await page.evaluate(async () => (await chrome.downloads.search({})).map((item) => item.id));
  const row = page.getByTestId('torrent-file').and(page.locator(`[data-path="${filePath}"]`));
  await row.getByTestId('file-save').click();
  let saved = '';
  await expect
    .poll(
      async () =>
        (saved = await page.evaluate(async (before) => {
          const items = await chrome.downloads.search({ state: 'complete' });
          const fresh = items.filter((item) => !before.includes(item.id));
          return fresh.length === 1 && fresh[0]!.url.startsWith('blob:') ? fresh[0]!.filename : '';
        }, known)),
      { timeout: 30_000 },
    )
    .not.toBe('');
  return sha256(new Uint8Array(await readFile(saved)));
}

test('a magnet pasted in the Downloads page downloads through a volunteer and an exit; the swarm sees only the exit', async () => {
  const cleanup = new Cleanup();
  try {
    const swarm = await startSwarm();
    cleanup.push(() => swarm.stop());
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

    const popup = await client.popup();
    const opened = client.context.waitForEvent('page');
    await popup.getByTestId('open-downloads').click();
    const page = await opened;
    await page.waitForLoadState();
    expect(page.url()).toContain('/downloads.html');
    await page.setViewportSize({ width: 900, height: 700 });

    await page.getByTestId('magnet-input').fill(swarm.magnet());
    await page.getByTestId('magnet-add').click();
    const row = page.getByTestId('torrent-row');
    await expect(row).toHaveCount(1);
    await expect(row).toHaveAttribute('data-infohash', swarm.content.infoHash);
    await expect(row).toHaveAttribute('data-state', 'done', { timeout: 90_000 });
    await expect(row.getByTestId('torrent-state')).toHaveText('Done');
    await expect(page.getByTestId('downloads-path')).toContainText('Connected');
    await expect(row.getByTestId('torrent-file')).toHaveCount(swarm.content.files.length);
    await page.screenshot({ path: join(ARTIFACTS_DIR, 'downloads-done.png'), fullPage: true });

    for (const file of swarm.content.files) {
      expect(await saveAndHash(page, `${swarm.content.name}/${file.path}`), file.path).toBe(file.sha256);
    }

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
