import { expect, test } from '@playwright/test';
import { clientSignaling, nodeClient } from '../fixtures/node-client';
import { clickSwitch, waitForSwitchStatus, webRtcPolicy } from '../fixtures/firefox-ui';
import { launchFirefoxClient } from '../fixtures/firefox-roles';
import { Cleanup, startTestNetwork } from '../fixtures/network';

/**
 * A Firefox that volunteers and is protected at once. While its path is up the add-on holds pages' WebRTC at
 * `proxy_only`, which binds the add-on's own background page too (lib/proxy-control.ts): links already connected
 * keep working, but no new one can connect, so a new person could not reach this relay. It must not be named to
 * them: it turns new people away at once (the broker names another relay, or none), says so in the popup, and
 * takes them again once Protect is off.
 */

const EXIT_ADDRESS = '127.0.0.3';

test('Firefox: volunteering while protected keeps its people, takes no new one, and says so', async () => {
  const cleanup = new Cleanup();
  try {
    const { signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });
    const firefox = await launchFirefoxClient(cleanup, 'volunteer-protected', {
      signalingUrl: signaling.url,
      mode: 'direct',
      volunteerCapacity: 4,
      volunteerBandwidthKiBps: 0,
      volunteerMonthlyMiB: 1024,
    });
    const popup = await firefox.popup();
    await clickSwitch(popup, 'volunteer');
    await waitForSwitchStatus(popup, 'volunteer', 'on');

    // Before Protect: a person gets a path through this Firefox relay.
    const first = nodeClient(signaling.url);
    cleanup.push(async () => first.stop());
    await first.start();
    expect(first.state).toMatchObject({ status: 'protected', path: { hop: { role: 'relay' } } });

    await clickSwitch(popup, 'protect');
    await waitForSwitchStatus(popup, 'protect', 'on', 90_000);
    expect(await webRtcPolicy(popup)).toBe('proxy_only');

    // The relay tells the broker it is full (its load reports are at most one a second): asked until heard.
    const asker = clientSignaling(signaling.url);
    cleanup.push(async () => asker.close());
    await asker.connect();
    await expect
      .poll(
        () =>
          asker.requestPath({ mode: 'two-hop' }).then(
            (path) => path.hop.role,
            (error: { code?: string }) => error.code,
          ),
        { timeout: 10_000 },
      )
      .toBe('no-relay-available');
    // A new person now: turned away at once, not handed a relay whose link cannot connect.
    const second = nodeClient(signaling.url);
    cleanup.push(async () => second.stop());
    await expect(second.start()).rejects.toMatchObject({ code: 'no-relay-available' });
    await popup.waitForSelector('[data-testid="volunteer-held-by-protect"]', { visible: true });
    // The person already here keeps the path.
    expect(first.state.status).toBe('protected');

    // Protect off: new people are taken again.
    await clickSwitch(popup, 'protect');
    await waitForSwitchStatus(popup, 'protect', 'off');
    await popup.waitForSelector('[data-testid="volunteer-held-by-protect"]', { hidden: true });
    const third = nodeClient(signaling.url);
    cleanup.push(async () => third.stop());
    await third.start();
    expect(third.state).toMatchObject({ status: 'protected', path: { hop: { role: 'relay' } } });
  } finally {
    await cleanup.run();
  }
});
