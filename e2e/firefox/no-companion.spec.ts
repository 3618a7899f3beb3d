import { expect, test } from '@playwright/test';
import { GECKO_ID } from '../../extension/identity';
import { launchFirefox } from '../fixtures/firefox';
import { clickSwitch, firefoxScreenshot, waitForSwitchStatus } from '../fixtures/firefox-ui';
import { Cleanup } from '../fixtures/network';

/**
 * Protect in a Firefox without the companion: Firefox says "No such native application …" (Chrome: "… not
 * found"), which must read as the missing companion, with the command that installs it for Firefox, not as a
 * generic error.
 */

test('Firefox: Protect without the companion says how to install it for Firefox', async () => {
  const cleanup = new Cleanup();
  try {
    const profile = await launchFirefox('no-companion');
    cleanup.push(() => profile.close());
    const popup = await profile.popup();
    await clickSwitch(popup, 'protect');
    await waitForSwitchStatus(popup, 'protect', 'error', 30_000);
    const install = await popup.waitForSelector('[data-testid="companion-install"] code');
    expect(await install?.evaluate((element) => element.textContent)).toBe(
      `npx underpass-companion install --browser firefox --extension-id ${GECKO_ID}`,
    );
    expect(await popup.$eval('[data-testid="protect-state"]', (element) => element.textContent)).toContain(
      'not installed',
    );
    await popup.locator('[data-testid="companion-install"] summary').click();
    await popup.waitForSelector('[data-testid="companion-details"]', { visible: true });
    expect(
      await popup.$eval('[data-testid="companion-details"]', (element) => element.textContent),
    ).toContain('underpass-companion serve');
    await firefoxScreenshot(popup, 'firefox-protect-no-companion');

    // Turning the switch off clears the error.
    await clickSwitch(popup, 'protect');
    await waitForSwitchStatus(popup, 'protect', 'off');
  } finally {
    await cleanup.run();
  }
});
