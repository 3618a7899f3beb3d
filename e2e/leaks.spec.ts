/// <reference types="chrome" />
import { lookup } from 'node:dns/promises';
import { networkInterfaces } from 'node:os';
import { expect, test, type Page } from '@playwright/test';
import { Cleanup, startTestNetwork } from './fixtures/network';
import { launchClient } from './fixtures/roles';
import { expectSwitchStatus, popupScreenshot, switchControl } from './fixtures/ui';
import { pageReachesOfferingPeer, probeOffer, probeSettle, type ProbePage } from './fixtures/webrtc-probe';

/**
 * Leaks while protected (direct mode here, which also exercises that option): a page's own
 * RTCPeerConnection gathers no candidate carrying this machine's addresses, and DNS happens only at the
 * exit: a host name that only the exit can resolve loads.
 */

const EXIT_ADDRESS = '127.0.0.3';
const EXIT_ONLY_HOST = 'only-the-exit.test';

/** Every candidate a page's RTCPeerConnection gathers in a few seconds (it may gather none at all). */
function gatherCandidates(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    const pc = new RTCPeerConnection({ iceServers: [] });
    const found: string[] = [];
    pc.createDataChannel('probe');
    const done = new Promise<void>((resolve) => {
      pc.addEventListener('icecandidate', (event) => {
        if (event.candidate) found.push(event.candidate.candidate);
        else resolve();
      });
      setTimeout(resolve, 5_000);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await done;
    const sdp = pc.localDescription?.sdp ?? '';
    pc.close();
    return [...found, ...sdp.split(/\r?\n/).filter((line) => line.startsWith('a=candidate'))];
  });
}

function machineAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((entry) => entry !== undefined && !entry.internal)
    .map((entry) => entry!.address);
}

test('a protected page learns no real address over WebRTC, and DNS happens at the exit', async () => {
  const cleanup = new Cleanup();
  try {
    const { website, signaling } = await startTestNetwork(cleanup, {
      address: EXIT_ADDRESS,
      // Only the exit knows this name; this machine's resolver (and so the browser's) does not.
      lookup: async (host) =>
        host === EXIT_ONLY_HOST
          ? [{ address: '127.0.0.1', family: 4 }]
          : lookup(host, { all: true, verbatim: true }),
    });
    await expect(lookup(EXIT_ONLY_HOST)).rejects.toThrow();

    const client = await launchClient(cleanup, 'leaks-client', {
      signalingUrl: signaling.url,
      mode: 'direct',
    });

    // The witness is not blind: unprotected, the same page gathers candidates.
    const tab = await client.context.newPage();
    await tab.goto(`${website.url}/`);
    const before = await gatherCandidates(tab);
    expect(before.length).toBeGreaterThan(0);

    const popup = await client.popup();
    await switchControl(popup, 'protect').click();
    await expectSwitchStatus(popup, 'protect', 'on', 90_000);
    await expect(popup.getByTestId('path-relay')).toHaveAttribute('data-value', '');
    await popupScreenshot(popup, 'popup-protect-on-direct');
    const policy = await client.serviceWorker.evaluate(() =>
      chrome.privacy.network.webRTCIPHandlingPolicy.get({}),
    );
    expect(policy.value).toBe('disable_non_proxied_udp');

    const unprotectedConnections = website.remoteAddresses.length;
    await tab.goto(`${website.url}/?protected`);
    await expect(tab.locator('#greeting')).toHaveText('Hello through the tunnel');
    const during = await gatherCandidates(tab);
    for (const address of machineAddresses()) {
      expect(during.join('\n')).not.toContain(address);
    }
    // Stronger than the above, and what Chromium does with this policy: no candidate at all.
    expect(during).toEqual([]);

    // DNS happens only at the exit: the browser cannot resolve this name, the exit can.
    await tab.goto(`http://${EXIT_ONLY_HOST}:${website.port}/`);
    await expect(tab.locator('#greeting')).toHaveText('Hello through the tunnel');
    expect([...new Set(website.remoteAddresses.slice(unprotectedConnections))]).toEqual([EXIT_ADDRESS]);

    // Off restores the browser's own WebRTC policy.
    await switchControl(popup, 'protect').click();
    await expectSwitchStatus(popup, 'protect', 'off');
    const restored = await client.serviceWorker.evaluate(() =>
      chrome.privacy.network.webRTCIPHandlingPolicy.get({}),
    );
    expect(restored.value).toBe('default');
  } finally {
    await cleanup.run();
  }
});

function probe(page: Page): ProbePage {
  return { offer: () => page.evaluate(probeOffer), settle: (answer) => page.evaluate(probeSettle, answer) };
}

/**
 * A hostile site's other way to the address: a server of its own that offers its candidates (UDP and TCP) and
 * waits for the page to reach them. Under Chrome's `disable_non_proxied_udp` the page sends no UDP at all, and
 * its TCP goes through the proxy, so the tunnel carries it and the exit's policy decides (here it refuses: the
 * server's address is not public). The one exception is a server on loopback, which Chrome never proxies: the
 * same machine, which knows the address anyway.
 */
test('a protected page cannot reach a server that offers its own candidates, except over the tunnel', async () => {
  const serverAddresses = machineAddresses().filter((address) => !address.includes(':'));
  test.skip(serverAddresses.length === 0, 'the probe server needs an IPv4 address other than loopback');
  const onMachineAddress = (candidate: string) => serverAddresses.some((a) => candidate.includes(` ${a} `));
  const cleanup = new Cleanup();
  try {
    const { website, signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });
    const client = await launchClient(cleanup, 'leaks-probe-client', {
      signalingUrl: signaling.url,
      mode: 'direct',
    });
    const tab = await client.context.newPage();
    await tab.goto(`${website.url}/`);
    // The witness is not blind: unprotected, the page reaches the server's machine address.
    expect(await pageReachesOfferingPeer(probe(tab), onMachineAddress)).toBe('connected');

    const popup = await client.popup();
    await switchControl(popup, 'protect').click();
    await expectSwitchStatus(popup, 'protect', 'on', 90_000);
    await tab.goto(`${website.url}/?protected`);
    await expect(tab.locator('#greeting')).toHaveText('Hello through the tunnel');
    // UDP and TCP candidates offered: no UDP leaves the page, and its TCP goes to the exit, which refuses.
    expect(await pageReachesOfferingPeer(probe(tab), onMachineAddress)).toBe('failed');
  } finally {
    await cleanup.run();
  }
});
