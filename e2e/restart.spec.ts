/// <reference types="chrome" />
import { expect, test } from '@playwright/test';
import { EXTENSION_ID } from '../extension/identity';
import { Cleanup, startTestNetwork } from './fixtures/network';
import { installCompanionHost } from './fixtures/native-host';
import { launchProfile } from './fixtures/profile';
import { configure, expectSwitchStatus, switchControl } from './fixtures/ui';

/** Protect survives a browser restart: if it was on, it comes back on by itself, and pages go through it. */

const EXIT_ADDRESS = '127.0.0.3';

test('Protect comes back on after the browser restarts', async () => {
  const cleanup = new Cleanup();
  try {
    const { website, signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });

    const first = await launchProfile('restart-client', {
      prepare: (dir) => installCompanionHost(dir, EXTENSION_ID),
    });
    const userDataDir = first.userDataDir;
    let current = first;
    cleanup.push(() => current.close());
    await configure(first, { signalingUrl: signaling.url, routeLoopback: true, mode: 'direct' });
    const popup = await first.popup();
    await switchControl(popup, 'protect').click();
    await expectSwitchStatus(popup, 'protect', 'on', 90_000);
    await first.closeBrowser();

    const second = await launchProfile('restart-client', { userDataDir });
    current = second;
    const again = await second.popup();
    await expectSwitchStatus(again, 'protect', 'on', 90_000);
    await expect(switchControl(again, 'protect')).toHaveAttribute('aria-checked', 'true');

    const tab = await second.context.newPage();
    await tab.goto(`${website.url}/`);
    await expect(tab.locator('#greeting')).toHaveText('Hello through the tunnel');
    expect([...new Set(website.remoteAddresses)]).toEqual([EXIT_ADDRESS]);
  } finally {
    await cleanup.run();
  }
});
