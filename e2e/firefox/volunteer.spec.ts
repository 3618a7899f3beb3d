import { expect, test } from '@playwright/test';
import { clientSignaling, nodeClient } from '../fixtures/node-client';
import { testIdAttribute, waitForTestIdAttribute } from '../fixtures/firefox-ui';
import { launchFirefoxVolunteer } from '../fixtures/firefox-roles';
import { Cleanup, startTestNetwork } from '../fixtures/network';
import { launchClient } from '../fixtures/roles';
import { expectSwitchStatus, switchControl } from '../fixtures/ui';
import { FILE_SIZE } from '../fixtures/website';

/**
 * Volunteer in Firefox (its relay in the MV2 background page) with a cap of one client: a Chromium client gets
 * the place and its pages go through, a second client (the client engine in Node) is turned away while it is
 * taken, and the popup's figures count what the relay carried.
 */

const EXIT_ADDRESS = '127.0.0.3';

test('Firefox: a volunteer with a cap of one relays for one client, turns a second away, and counts', async () => {
  const cleanup = new Cleanup();
  try {
    const { website, signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });
    const { popup: volunteerPopup } = await launchFirefoxVolunteer(cleanup, 'cap-volunteer', {
      signalingUrl: signaling.url,
      volunteerCapacity: 1,
      volunteerBandwidthKiBps: 0,
      volunteerMonthlyMiB: 1024,
    });
    const client = await launchClient(cleanup, 'ff-cap-client', { signalingUrl: signaling.url });

    const popup = await client.popup();
    await switchControl(popup, 'protect').click();
    await expectSwitchStatus(popup, 'protect', 'on', 90_000);
    await waitForTestIdAttribute(volunteerPopup, 'volunteer-clients', '1');
    await volunteerPopup.waitForSelector('[data-testid="volunteer-full"]', { visible: true });

    // ── A second client is turned away while the one place is taken ──
    const second = nodeClient(signaling.url);
    cleanup.push(async () => second.stop());
    await expect(second.start()).rejects.toMatchObject({ code: 'no-relay-available' });
    expect(await testIdAttribute(volunteerPopup, 'volunteer-clients')).toBe('1');

    // ── The client's traffic goes through the Firefox relay, and its figures count it ──
    const tab = await client.context.newPage();
    await tab.goto(`${website.url}/`);
    const size = await tab.evaluate(async () => {
      const response = await fetch('/file.bin', { cache: 'no-store' });
      return (await response.arrayBuffer()).byteLength;
    });
    expect(size).toBe(FILE_SIZE);
    expect([...new Set(website.remoteAddresses)]).toEqual([EXIT_ADDRESS]);
    await expect
      .poll(async () => Number(await testIdAttribute(volunteerPopup, 'volunteer-bytes', 'data-to-clients')), {
        timeout: 15_000,
      })
      .toBeGreaterThan(FILE_SIZE);
    await waitForTestIdAttribute(volunteerPopup, 'volunteer-helped', '1');
    expect(Number(await testIdAttribute(volunteerPopup, 'volunteer-month'))).toBeGreaterThan(FILE_SIZE);

    // ── Once the place is free, it is handed out again ──
    await switchControl(popup, 'protect').click();
    await expectSwitchStatus(popup, 'protect', 'off');
    await waitForTestIdAttribute(volunteerPopup, 'volunteer-clients', '0', 5_000);
    const asker = clientSignaling(signaling.url);
    cleanup.push(async () => asker.close());
    await asker.connect();
    const path = await asker.requestPath({ mode: 'two-hop' });
    expect(path.hop.role).toBe('relay');
  } finally {
    await cleanup.run();
  }
});
