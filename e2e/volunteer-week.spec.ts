/// <reference types="chrome" />
import { expect, test } from '@playwright/test';
import { Cleanup, startTestNetwork } from './fixtures/network';
import { clientSignaling } from './fixtures/node-client';
import { evaluateInOffscreen } from './fixtures/offscreen';
import { launchClient, launchVolunteer } from './fixtures/roles';
import { expectSwitchStatus, popupScreenshot, switchControl } from './fixtures/ui';
import { FILE_SIZE } from './fixtures/website';

/**
 * A volunteer's week and its pause on battery, in real Chromium: after a client's download through the relay,
 * the popup's seven-day chart shows today's people helped and data relayed (written in a batch, so within the
 * flush delay); then the battery runs out of mains power and Volunteer pauses (leaving the broker, which
 * hands out no relay), and plugged in again it resumes by itself.
 *
 * Chromium has no battery emulation in DevTools. The test drives the offscreen document's real BatteryManager
 * instead (its `charging` overridden on the object and a `chargingchange` dispatched, as the browser does), so
 * the production path runs end to end and the build carries no test hook.
 */

const EXIT_ADDRESS = '127.0.0.3';

/** Makes the offscreen document's battery say `charging`, and tells its listeners. */
function setCharging(charging: boolean): string {
  return `(async () => {
    const battery = await navigator.getBattery();
    Object.defineProperty(battery, 'charging', { configurable: true, get: () => ${charging} });
    battery.dispatchEvent(new Event('chargingchange'));
    return battery.charging;
  })()`;
}

test('the popup charts the week, and Volunteer pauses on battery and resumes when plugged in', async () => {
  const cleanup = new Cleanup();
  try {
    const { website, signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });
    const { profile: volunteer, popup: volunteerPopup } = await launchVolunteer(
      cleanup,
      'week-volunteer',
      { signalingUrl: signaling.url, volunteerCapacity: 2, volunteerPauseOnBattery: true },
      { devToolsPort: true },
    );

    // Desktop Chromium tells about the battery but not whether a connection is metered: that option says so.
    const options = await volunteer.options();
    await expect(options.getByLabel('Pause volunteering when on battery')).toBeChecked();
    await expect(options.getByLabel('Pause volunteering on a metered connection')).toBeDisabled();
    await expect(options.getByTestId('volunteer-pause-metered-why')).toContainText('does not tell');
    await options.close();

    // ── Some relayed traffic, then the chart ──
    await expect(volunteerPopup.getByTestId('volunteer-chart')).toHaveCount(0);
    const client = await launchClient(cleanup, 'week-client', { signalingUrl: signaling.url });
    const popup = await client.popup();
    await switchControl(popup, 'protect').click();
    await expectSwitchStatus(popup, 'protect', 'on', 90_000);
    const tab = await client.context.newPage();
    await tab.goto(`${website.url}/`);
    const size = await tab.evaluate(async () => {
      const response = await fetch('/file.bin', { cache: 'no-store' });
      return (await response.arrayBuffer()).byteLength;
    });
    expect(size).toBe(FILE_SIZE);

    const chart = volunteerPopup.getByRole('figure', { name: 'Last 7 days' });
    // Written within the history's flush delay (20 s) of the first relayed bytes.
    await expect(chart).toBeVisible({ timeout: 45_000 });
    const days = volunteerPopup.getByTestId('volunteer-chart-day');
    await expect(days).toHaveCount(7);
    const today = days.last();
    await expect(today).toHaveAttribute('data-helped', '1');
    await expect
      .poll(async () => Number(await today.getAttribute('data-bytes')), { timeout: 45_000 })
      .toBeGreaterThan(FILE_SIZE);
    // The same figures for screen readers: a table in the accessibility tree, one row per day.
    await expect(volunteerPopup.getByRole('table', { name: 'Last 7 days' }).getByRole('row')).toHaveCount(8);
    await expect(chart.locator('svg.chart-bars')).toHaveCount(2);
    await popupScreenshot(volunteerPopup, 'popup-volunteer-week');
    await volunteerPopup.emulateMedia({ colorScheme: 'dark' });
    await popupScreenshot(volunteerPopup, 'popup-volunteer-week-dark');
    await volunteerPopup.emulateMedia({ colorScheme: 'light' });

    // ── On battery: paused, and out of the broker's list ──
    expect(await evaluateInOffscreen<boolean>(volunteer, setCharging(false))).toBe(false);
    await expectSwitchStatus(volunteerPopup, 'volunteer', 'paused', 10_000);
    await expect(volunteerPopup.getByTestId('volunteer-state')).toContainText('Paused: on battery');
    await expect(volunteerPopup.getByTestId('volunteer-paused-help')).toBeVisible();
    await expect(volunteerPopup.getByRole('switch', { name: 'Volunteer' })).toHaveAttribute(
      'aria-checked',
      'true',
    );
    await popupScreenshot(volunteerPopup, 'popup-volunteer-paused-battery');
    const asker = clientSignaling(signaling.url);
    cleanup.push(async () => asker.close());
    await asker.connect();
    await expect(asker.requestPath({ mode: 'two-hop' })).rejects.toMatchObject({
      code: 'no-relay-available',
    });
    // Its counts stay: the chart is the week's, not the run's.
    await expect(chart).toBeVisible();

    // ── Plugged in: it resumes by itself (after the 15 s the condition must stay away) ──
    await evaluateInOffscreen(volunteer, setCharging(true));
    await expectSwitchStatus(volunteerPopup, 'volunteer', 'on', 45_000);
    await expect
      .poll(
        async () =>
          asker.requestPath({ mode: 'two-hop' }).then(
            (path) => path.hop.role,
            (error: { code?: string }) => error.code,
          ),
        { timeout: 15_000 },
      )
      .toBe('relay');
  } finally {
    await cleanup.run();
  }
});
