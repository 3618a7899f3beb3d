/// <reference types="chrome" />
import { expect, test } from '@playwright/test';
import { clientSignaling, nodeClient } from './fixtures/node-client';
import { Cleanup, startTestNetwork } from './fixtures/network';
import { launchClient, launchVolunteer } from './fixtures/roles';
import { expectSwitchStatus, popupScreenshot, switchControl } from './fixtures/ui';
import { FILE_SIZE } from './fixtures/website';

/**
 * A volunteer who offers one place: the first client (a browser) gets it, a second client (the same client
 * engine, run in Node) is turned away while the place is taken, and the place is handed out again once it
 * is free. The popup's figures match what the relay carried: the client's bytes plus the tunnel's own
 * overhead, no more.
 */

const EXIT_ADDRESS = '127.0.0.3';

test('a volunteer with a cap of one client turns a second away, and its figures match', async () => {
  const cleanup = new Cleanup();
  try {
    const { website, signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });

    const { profile: volunteer, popup: volunteerPopup } = await launchVolunteer(cleanup, 'cap-volunteer', {
      signalingUrl: signaling.url,
      volunteerCapacity: 1,
      volunteerBandwidthKiBps: 0,
      volunteerMonthlyMiB: 1024,
    });
    const client = await launchClient(cleanup, 'cap-client', { signalingUrl: signaling.url });
    await popupScreenshot(volunteerPopup, 'popup-volunteer-on-idle');

    const popup = await client.popup();
    await switchControl(popup, 'protect').click();
    await expectSwitchStatus(popup, 'protect', 'on', 90_000);
    await expect(volunteerPopup.getByTestId('volunteer-clients')).toHaveAttribute('data-value', '1');
    await expect(volunteerPopup.getByTestId('volunteer-full')).toBeVisible();

    // ── A second client is turned away while the one place is taken ──
    const second = nodeClient(signaling.url);
    cleanup.push(async () => second.stop());
    await expect(second.start()).rejects.toMatchObject({ code: 'no-relay-available' });
    expect(second.state.status).toBe('error');
    await expect(volunteerPopup.getByTestId('volunteer-clients')).toHaveAttribute('data-value', '1');

    // ── The first client's traffic, and the figures that count it ──
    const tab = await client.context.newPage();
    await tab.goto(`${website.url}/`);
    const size = await tab.evaluate(async () => {
      const response = await fetch('/file.bin', { cache: 'no-store' });
      return (await response.arrayBuffer()).byteLength;
    });
    expect(size).toBe(FILE_SIZE);

    const relayed = async () => ({
      toClients: Number(await volunteerPopup.getByTestId('volunteer-bytes').getAttribute('data-to-clients')),
      fromClients: Number(
        await volunteerPopup.getByTestId('volunteer-bytes').getAttribute('data-from-clients'),
      ),
    });
    const clientDown = async () => Number(await popup.getByTestId('path-down').getAttribute('data-value'));
    await expect
      .poll(async () => (await relayed()).toClients, { timeout: 15_000 })
      .toBeGreaterThan(FILE_SIZE);
    await expect.poll(clientDown, { timeout: 15_000 }).toBeGreaterThan(FILE_SIZE);
    // Let both sides' counters settle, then compare: the relay carried what the client received, plus the
    // sealed framing (a few percent), and nothing it invented.
    await expect
      .poll(
        async () => {
          const down = await clientDown();
          const { toClients } = await relayed();
          return toClients >= down && toClients <= down * 1.05 + 64 * 1024;
        },
        { timeout: 15_000 },
      )
      .toBe(true);
    await expect(volunteerPopup.getByTestId('volunteer-helped')).toHaveAttribute('data-value', '1');
    const month = Number(await volunteerPopup.getByTestId('volunteer-month').getAttribute('data-value'));
    const { toClients, fromClients } = await relayed();
    expect(month).toBeGreaterThanOrEqual(toClients + fromClients - 64 * 1024);
    await popupScreenshot(volunteerPopup, 'popup-volunteer-full');
    const badge = await volunteer.serviceWorker.evaluate(() => chrome.action.getBadgeText({}));
    expect(badge).toBe('1');

    // ── Once the place is free, the broker hands it out again ──
    await switchControl(popup, 'protect').click();
    await expectSwitchStatus(popup, 'protect', 'off');
    // Within the bound for a client that leaves on purpose (departed.spec.ts times each way of leaving).
    await expect(volunteerPopup.getByTestId('volunteer-clients')).toHaveAttribute('data-value', '0', {
      timeout: 5_000,
    });
    await expect(volunteerPopup.getByTestId('volunteer-full')).toBeHidden();
    const asker = clientSignaling(signaling.url);
    cleanup.push(async () => asker.close());
    await asker.connect();
    const path = await asker.requestPath({ mode: 'two-hop' });
    expect(path.hop.role).toBe('relay');
  } finally {
    await cleanup.run();
  }
});
