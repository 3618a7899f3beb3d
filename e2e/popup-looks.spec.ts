/// <reference types="chrome" />
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import type { ToolbarState } from '../extension/lib/toolbar-icon';
import { Cleanup, startTestNetwork } from './fixtures/network';
import { ARTIFACTS_DIR } from './fixtures/paths';
import { launchClient, launchVolunteer } from './fixtures/roles';
import {
  configure,
  expectSwitchStatus,
  popupScreenshot,
  switchControl,
  switchStateText,
} from './fixtures/ui';

/**
 * The popup in every state real parts can bring about, in light and in dark, saved as screenshots
 * (e2e/artifacts/looks-<state>-<scheme>.png) for a reviewer: off, connecting (a signaling server that accepts
 * the connection and never answers), protected through a volunteer and an exit, protected while volunteering,
 * volunteering, error (Protect in a browser without the companion), reconnecting (the relay's browser closed).
 * In each: the state's words are there, the dark page is dark with light text (and the light one the other way),
 * the state's text keeps AA contrast, and the toolbar icon the background set (its record in storage.session)
 * is that state's picture for that scheme: the scheme reaches the background from the popup alone. The settings
 * and downloads pages are checked and saved in both schemes at the end.
 */

const EXIT_ADDRESS = '127.0.0.3';
const SCHEMES = ['light', 'dark'] as const;
type Scheme = (typeof SCHEMES)[number];

type Rgb = [number, number, number];

function parseRgb(css: string): Rgb {
  const parts = css.match(/\d+(\.\d+)?/g)?.map(Number) ?? [];
  if (parts.length < 3) throw new Error(`not an rgb colour: ${css}`);
  return [parts[0]!, parts[1]!, parts[2]!];
}

function luminance(rgb: Rgb): number {
  const lin = (c: number) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(rgb[0]) + 0.7152 * lin(rgb[1]) + 0.0722 * lin(rgb[2]);
}

function contrast(a: Rgb, b: Rgb): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** The page's colours as the browser computed them: the background, body text, and each switch's state line. */
async function computedColours(popup: Page) {
  return popup.evaluate(() => {
    const colour = (selector: string) => {
      const element = document.querySelector(selector);
      return element ? getComputedStyle(element).color : undefined;
    };
    return {
      background: getComputedStyle(document.body).backgroundColor,
      text: getComputedStyle(document.body).color,
      hint: colour('.switch-hint'),
      protectState: colour('[data-testid="protect-state"]'),
      volunteerState: colour('[data-testid="volunteer-state"]'),
    };
  });
}

async function expectScheme(popup: Page, scheme: Scheme): Promise<void> {
  const colours = await computedColours(popup);
  const background = parseRgb(colours.background);
  const text = parseRgb(colours.text);
  if (scheme === 'dark') {
    expect(luminance(background), `dark background ${colours.background}`).toBeLessThan(0.05);
    expect(luminance(text), `light text ${colours.text}`).toBeGreaterThan(0.6);
  } else {
    expect(luminance(background), `light background ${colours.background}`).toBeGreaterThan(0.9);
    expect(luminance(text), `dark text ${colours.text}`).toBeLessThan(0.05);
  }
  for (const [name, css] of Object.entries(colours)) {
    if (name === 'background' || css === undefined) continue;
    expect(
      contrast(parseRgb(css), background),
      `${name} ${css} on ${colours.background}`,
    ).toBeGreaterThanOrEqual(4.5);
  }
}

/** What the background last put on the toolbar, from its record (extension/lib/toolbar-icon-painter.ts). */
async function toolbarIcon(popup: Page): Promise<{ state?: string; theme?: string; png16?: string }> {
  return popup.evaluate(async () => {
    const stored = await chrome.storage.session.get('look:toolbarIcon');
    const record = stored['look:toolbarIcon'] as
      { state: string; theme: string; path: Record<string, string> } | undefined;
    return { state: record?.state, theme: record?.theme, png16: record?.path['16'] };
  });
}

/** Light, then dark: the state's words, the page's colours, the toolbar icon, and a screenshot of each. */
async function capture(
  popup: Page,
  shot: string,
  icon: ToolbarState,
  expectWords: (popup: Page) => Promise<void>,
): Promise<void> {
  for (const scheme of SCHEMES) {
    await popup.emulateMedia({ colorScheme: scheme });
    await expectWords(popup);
    await expectScheme(popup, scheme);
    await expect
      .poll(async () => {
        const { state, theme } = await toolbarIcon(popup);
        return { state, theme };
      })
      .toEqual({ state: icon, theme: scheme });
    const painted = await toolbarIcon(popup);
    // The picture the background named is one the extension has, a PNG.
    const file = await popup.evaluate(async (path) => {
      const response = await fetch(chrome.runtime.getURL(path));
      return { ok: response.ok, type: response.headers.get('content-type') };
    }, painted.png16 ?? '');
    expect(file).toEqual({ ok: true, type: 'image/png' });
    await popupScreenshot(popup, `looks-${shot}-${scheme}`);
  }
}

/** A signaling "server" that takes the connection and never answers: the client stays connecting. */
async function startSilentServer(cleanup: Cleanup): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `ws://127.0.0.1:${address.port}`;
}

test('the popup in every state, light and dark, and the toolbar icon that goes with it', async () => {
  const cleanup = new Cleanup();
  try {
    const { signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS, quiet: true });
    const silentUrl = await startSilentServer(cleanup);

    // ── A volunteer: volunteering ──
    const { profile: volunteer, popup: volunteerPopup } = await launchVolunteer(cleanup, 'looks-volunteer', {
      signalingUrl: signaling.url,
    });
    await capture(volunteerPopup, 'volunteering', 'volunteering', async (popup) => {
      await expectSwitchStatus(popup, 'volunteer', 'on');
      await expect(switchStateText(popup, 'volunteer')).toContainText('Volunteering');
    });

    // ── A client: off, then connecting to a server that never answers ──
    const client = await launchClient(cleanup, 'looks-client', { signalingUrl: silentUrl });
    const popup = await client.popup();
    await capture(popup, 'off', 'off', async (page) => {
      await expect(switchStateText(page, 'protect')).toHaveText('Off');
      await expect(switchControl(page, 'protect')).toHaveAttribute('aria-checked', 'false');
    });
    await switchControl(popup, 'protect').click();
    await capture(popup, 'connecting', 'connecting', async (page) => {
      await expectSwitchStatus(page, 'protect', 'connecting', 10_000);
      await expect(switchStateText(page, 'protect')).toContainText('Connecting');
    });
    await switchControl(popup, 'protect').click();
    await expectSwitchStatus(popup, 'protect', 'off');

    // ── Protected through the volunteer and the exit; then volunteering too ──
    await configure(client, { signalingUrl: signaling.url, routeLoopback: true });
    await switchControl(popup, 'protect').click();
    await expectSwitchStatus(popup, 'protect', 'on', 90_000);
    await capture(popup, 'protected', 'protected', async (page) => {
      await expect(switchStateText(page, 'protect')).toContainText('Protected');
      await expect(page.getByTestId('path-relay')).not.toHaveAttribute('data-value', '');
    });
    await switchControl(popup, 'volunteer').click();
    await expectSwitchStatus(popup, 'volunteer', 'on');
    await capture(popup, 'protected-volunteering', 'protected-volunteering', async (page) => {
      await expect(switchStateText(page, 'protect')).toContainText('Protected');
      await expect(switchStateText(page, 'volunteer')).toContainText('Volunteering');
    });
    await switchControl(popup, 'volunteer').click();
    await expectSwitchStatus(popup, 'volunteer', 'off');

    // ── Error: Protect in the volunteer's browser, which has no companion ──
    await switchControl(volunteerPopup, 'protect').click();
    await capture(volunteerPopup, 'error', 'error', async (page) => {
      await expectSwitchStatus(page, 'protect', 'error', 30_000);
      await expect(switchStateText(page, 'protect')).toContainText('not installed');
    });
    await switchControl(volunteerPopup, 'protect').click();
    await expectSwitchStatus(volunteerPopup, 'protect', 'off');

    // ── Reconnecting: the relay's browser goes away, and no other relay exists ──
    await volunteer.close();
    await expectSwitchStatus(popup, 'protect', 'reconnecting', 30_000);
    await capture(popup, 'reconnecting', 'reconnecting', async (page) => {
      await expectSwitchStatus(page, 'protect', 'reconnecting');
      await expect(switchStateText(page, 'protect')).toContainText('Reconnecting');
    });

    // ── The settings and downloads pages follow the scheme too ──
    for (const path of ['options.html', 'downloads.html']) {
      const page = await client.context.newPage();
      await page.goto(`chrome-extension://${client.extensionId}/${path}`);
      await expect(page.locator('h1')).toBeVisible();
      for (const scheme of SCHEMES) {
        await page.emulateMedia({ colorScheme: scheme });
        await expectScheme(page, scheme);
        await page.screenshot({
          path: join(ARTIFACTS_DIR, `looks-${path.replace('.html', '')}-${scheme}.png`),
          fullPage: true,
        });
      }
      await page.close();
    }
  } finally {
    await cleanup.run();
  }
});
