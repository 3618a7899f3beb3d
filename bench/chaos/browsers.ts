/**
 * The chaos run's browsers: the real Chromium with the built extension, launched by the e2e fixtures. A
 * volunteer can be killed outright (SIGKILL of its browser process: its WebRTC links die without a close, as
 * when a laptop lid shuts) and relaunched on the same profile, where it is switched on again if it did not
 * come back on by itself.
 */
import { readdir, readFile } from 'node:fs/promises';
import type { Page } from '@playwright/test';
import { EXTENSION_ID } from '../../extension/identity';
import { installCompanionHost } from '../../e2e/fixtures/native-host';
import { launchProfile, type Profile } from '../../e2e/fixtures/profile';
import { configure, expectSwitchStatus, switchControl, switchStateText } from '../../e2e/fixtures/ui';

const PATH_UP_TIMEOUT_MS = 120_000;

/** The pid of a profile's main browser process (its children carry `--type=`), from /proc. */
export async function browserPid(userDataDir: string): Promise<number | undefined> {
  for (const entry of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    const args = cmdline.split('\0');
    if (args.includes(`--user-data-dir=${userDataDir}`) && !args.some((a) => a.startsWith('--type='))) {
      return Number(entry);
    }
  }
  return undefined;
}

export class Volunteer {
  private profile: Profile | undefined;
  private popupPage: Page | undefined;
  private userDataDir: string | undefined;

  constructor(
    readonly name: string,
    private readonly signalingUrl: string,
  ) {}

  get up(): boolean {
    return this.profile !== undefined;
  }

  async start(): Promise<void> {
    const fresh = this.userDataDir === undefined;
    const profile = await launchProfile(this.name, this.userDataDir ? { userDataDir: this.userDataDir } : {});
    this.profile = profile;
    this.userDataDir = profile.userDataDir;
    if (fresh) await configure(profile, { signalingUrl: this.signalingUrl, routeLoopback: false });
    const popup = await profile.popup();
    this.popupPage = popup;
    // After a relaunch the switch may come back on by itself, a moment after the popup first shows it off. The
    // popup's switch sends the opposite of what it shows, so a click that crossed the switch's own return turned
    // it off again (seen once in a 10-minute run). So, as a user would: whenever it shows off, turn it on, until
    // it is on.
    const deadline = Date.now() + PATH_UP_TIMEOUT_MS;
    for (;;) {
      const status = await switchStateText(popup, 'volunteer').getAttribute('data-status');
      if (status === 'on') break;
      if (Date.now() > deadline) throw new Error(`the volunteer did not come on (it shows ${status})`);
      if (status === 'off' || status === 'error') await switchControl(popup, 'volunteer').click();
      await popup.waitForTimeout(500);
    }
  }

  /** How many clients it relays now, as its popup says (0 when it is down or cannot tell). */
  async clients(): Promise<number> {
    if (!this.popupPage) return 0;
    const value = await this.popupPage
      .getByTestId('volunteer-clients')
      .getAttribute('data-value', { timeout: 2_000 })
      .catch(() => null);
    return Number(value ?? 0) || 0;
  }

  /** SIGKILL of its browser; then Playwright lets go of the dead context. */
  async kill(): Promise<void> {
    const profile = this.profile;
    if (!profile) return;
    this.profile = undefined;
    this.popupPage = undefined;
    const pid = await browserPid(profile.userDataDir);
    if (pid === undefined) throw new Error(`${this.name}: no browser process found to kill`);
    process.kill(pid, 'SIGKILL');
    await profile.closeBrowser().catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.profile) await this.profile.close();
    this.profile = undefined;
  }
}

export type ClientBrowser = {
  profile: Profile;
  popup: Page;
};

/**
 * The protected client, launched through `chromiumPath` (the client's network namespace) with the companion
 * installed as its native host, Protect switched on and up.
 */
export async function launchProtectedClient(
  chromiumPath: string,
  signalingUrl: string,
): Promise<ClientBrowser> {
  // The fixture reads CHROMIUM_PATH when it launches; set it for this one launch only.
  const previous = process.env['CHROMIUM_PATH'];
  process.env['CHROMIUM_PATH'] = chromiumPath;
  let profile: Profile;
  try {
    profile = await launchProfile('chaos-client', {
      prepare: (dir) => installCompanionHost(dir, EXTENSION_ID),
    });
  } finally {
    if (previous === undefined) delete process.env['CHROMIUM_PATH'];
    else process.env['CHROMIUM_PATH'] = previous;
  }
  try {
    await configure(profile, { signalingUrl, routeLoopback: true });
    const popup = await profile.popup();
    await switchControl(popup, 'protect').click();
    await expectSwitchStatus(popup, 'protect', 'on', PATH_UP_TIMEOUT_MS);
    return { profile, popup };
  } catch (error) {
    await profile.close();
    throw error;
  }
}
