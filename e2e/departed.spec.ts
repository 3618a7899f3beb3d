import { readdirSync, readFileSync } from 'node:fs';
import { expect, test, type Page } from '@playwright/test';
import { Cleanup, startTestNetwork } from './fixtures/network';
import { launchClient, launchVolunteer } from './fixtures/roles';
import { expectSwitchStatus, switchControl } from './fixtures/ui';
import type { Profile } from './fixtures/profile';

/**
 * A client that leaves a volunteer frees its place within a bound, however it left: Protect turned off, the
 * browser closed, its network gone (the whole browser frozen: nothing more comes from it, not even a goodbye),
 * or the engines' host crashed (its renderer killed). Each way is timed from the leave to the volunteer's
 * count dropping, and the figure is printed.
 */

const EXIT_ADDRESS = '127.0.0.7';
/**
 * The documented bounds (README, "A client that leaves a volunteer"), each with the popup's half-second stats
 * interval on top: a client whose browser still runs its network stack is gone at once, one whose socket to the
 * broker closes within ~1.5 s (the broker's word gives its link 1 s for last messages, PROTOCOL.md §1); one that
 * vanishes without a word is found by the link's keepalive (PROTOCOL.md §2: nothing
 * heard for 3 s, found within 3.5 s).
 */
const FREED_WITHIN_MS: Record<Leave, number> = {
  'protect-off': 3_000,
  'browser-closed': 3_000,
  'host-crashed': 3_000,
  'network-gone': 5_000,
};

type Leave = 'protect-off' | 'browser-closed' | 'network-gone' | 'host-crashed';

/** The processes of one test browser: its main process and every descendant (read from /proc, Linux only). */
function browserProcesses(userDataDir: string): { pid: number; args: string }[] {
  const rows: { pid: number; ppid: number; args: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      // The command name in stat may hold spaces and parentheses: the parent pid follows the last ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      rows.push({ pid: Number(entry), ppid, args });
    } catch {
      // It exited while we looked.
    }
  }
  const main = rows.find(
    (r) => r.args.includes(`--user-data-dir=${userDataDir}`) && !r.args.includes('--type='),
  );
  if (!main) throw new Error(`no browser process for ${userDataDir}`);
  const tree = new Set([main.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const r of rows)
      if (tree.has(r.ppid) && !tree.has(r.pid)) {
        tree.add(r.pid);
        grew = true;
      }
  }
  return rows.filter((r) => tree.has(r.pid));
}

async function leave(how: Leave, client: Profile, popup: Page, cleanup: Cleanup): Promise<void> {
  switch (how) {
    case 'protect-off':
      await switchControl(popup, 'protect').click();
      return;
    case 'browser-closed':
      await client.closeBrowser();
      return;
    case 'network-gone': {
      const pids = browserProcesses(client.userDataDir).map((p) => p.pid);
      cleanup.push(async () => {
        for (const pid of pids) signal(pid, 'SIGCONT');
      });
      for (const pid of pids) signal(pid, 'SIGSTOP');
      return;
    }
    case 'host-crashed': {
      const renderers = browserProcesses(client.userDataDir).filter((p) =>
        p.args.includes('--extension-process'),
      );
      expect(renderers.length).toBeGreaterThan(0);
      for (const { pid } of renderers) signal(pid, 'SIGKILL');
      return;
    }
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // It exited already.
  }
}

for (const how of ['protect-off', 'browser-closed', 'network-gone', 'host-crashed'] as const) {
  test(`a client that left (${how}) frees its place at the volunteer`, async () => {
    const cleanup = new Cleanup();
    try {
      const { signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });
      const { popup: volunteerPopup } = await launchVolunteer(cleanup, `departed-volunteer-${how}`, {
        signalingUrl: signaling.url,
        volunteerCapacity: 1,
        volunteerBandwidthKiBps: 0,
        volunteerMonthlyMiB: 1024,
      });
      const client = await launchClient(cleanup, `departed-client-${how}`, { signalingUrl: signaling.url });
      const popup = await client.popup();
      await switchControl(popup, 'protect').click();
      await expectSwitchStatus(popup, 'protect', 'on', 90_000);
      const clients = volunteerPopup.getByTestId('volunteer-clients');
      await expect(clients).toHaveAttribute('data-value', '1');

      const left = Date.now();
      await leave(how, client, popup, cleanup);
      await expect
        .poll(() => clients.getAttribute('data-value'), { intervals: [50], timeout: 60_000 })
        .toBe('0');
      const freedMs = Date.now() - left;
      console.log(`departed: ${how} freed the place in ${freedMs} ms`);
      expect(freedMs).toBeLessThan(FREED_WITHIN_MS[how]);
    } finally {
      await cleanup.run();
    }
  });
}
