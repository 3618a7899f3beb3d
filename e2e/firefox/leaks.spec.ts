import { networkInterfaces } from 'node:os';
import { expect, test } from '@playwright/test';
import type { Page } from 'puppeteer-core';
import {
  clickSwitch,
  firefoxScreenshot,
  loadGreeting,
  waitForSwitchStatus,
  waitForTestIdAttribute,
  webRtcPolicy,
} from '../fixtures/firefox-ui';
import { launchFirefoxClient } from '../fixtures/firefox-roles';
import { Cleanup, startTestNetwork } from '../fixtures/network';
import { pageReachesOfferingPeer, probeOffer, probeSettle, type ProbePage } from '../fixtures/webrtc-probe';

/**
 * WebRTC leaks in Firefox while protected (direct mode, the client's link straight to the exit): a page's own
 * RTCPeerConnection gathers no candidate that carries this machine's addresses, and cannot even reach a server
 * that offers its own candidates (which would show that server the address). Firefox's policy binds the
 * add-on's background page too (Chrome's does not), so the add-on sets its strict `proxy_only` only while the
 * path is up, when its links are already connected (extension/lib/proxy-control.ts).
 */

const EXIT_ADDRESS = '127.0.0.3';

/**
 * Every candidate a page's RTCPeerConnection gathers in 5 s, as the Chromium spec does: under `proxy_only`
 * Firefox never starts gathering, so no end-of-candidates comes to wait for.
 */
function gatherCandidates(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    const pc = new RTCPeerConnection({ iceServers: [] });
    const found: string[] = [];
    pc.createDataChannel('probe');
    const done = new Promise<void>((resolve) => {
      pc.addEventListener('icecandidate', (event) => {
        if (event.candidate?.candidate) found.push(event.candidate.candidate);
        else if (!event.candidate) resolve();
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

function probe(page: Page): ProbePage {
  return { offer: () => page.evaluate(probeOffer), settle: (answer) => page.evaluate(probeSettle, answer) };
}

function machineAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((entry) => entry !== undefined && !entry.internal)
    .map((entry) => entry!.address);
}

test('Firefox: a protected page gathers no machine address over WebRTC', async () => {
  const cleanup = new Cleanup();
  try {
    const { website, signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });
    const client = await launchFirefoxClient(cleanup, 'leaks-client', {
      signalingUrl: signaling.url,
      mode: 'direct',
    });

    // The witness is not blind: unprotected, the same page gathers candidates.
    const tab = await client.newTab();
    expect(await loadGreeting(tab, `${website.url}/`)).toBe('Hello through the tunnel');
    expect((await gatherCandidates(tab)).length).toBeGreaterThan(0);
    expect(await pageReachesOfferingPeer(probe(tab))).toBe('connected');

    const popup = await client.popup();
    await clickSwitch(popup, 'protect');
    await waitForSwitchStatus(popup, 'protect', 'on', 90_000);
    await waitForTestIdAttribute(popup, 'path-relay', '');
    await firefoxScreenshot(popup, 'firefox-protect-on-direct');
    expect(await webRtcPolicy(popup)).toBe('proxy_only');

    const seenBefore = website.remoteAddresses.length;
    expect(await loadGreeting(tab, `${website.url}/?protected`)).toBe('Hello through the tunnel');
    expect([...new Set(website.remoteAddresses.slice(seenBefore))]).toEqual([EXIT_ADDRESS]);
    const during = await gatherCandidates(tab);
    for (const address of machineAddresses()) expect(during.join('\n')).not.toContain(address);
    // Stronger, and what Firefox does with this policy: no candidate at all.
    expect(during).toEqual([]);
    // And no UDP to a server that offers its candidates (the same probe connected before Protect was on).
    expect(await pageReachesOfferingPeer(probe(tab))).toBe('failed');
    // The add-on's own link, made before the policy, still carries the page.
    expect(await loadGreeting(tab, `${website.url}/?still-protected`)).toBe('Hello through the tunnel');

    // Off gives the browser its own WebRTC policy back.
    await clickSwitch(popup, 'protect');
    await waitForSwitchStatus(popup, 'protect', 'off');
    expect(await webRtcPolicy(popup)).toBe('default');
  } finally {
    await cleanup.run();
  }
});
