/**
 * The client's own network, which the harness can cut. This kernel has no netem (PLATFORM-NOTES, networks),
 * so the client's Chromium runs in a network namespace of its own, joined to this machine by one veth pair:
 * every byte it sends or receives — its signaling WebSocket, its WebRTC to the relay, and any direct
 * connection it should never make — crosses that pair. Setting the host's end down is a blackhole: packets
 * vanish, nothing is reset, as when a laptop's Wi-Fi drops. The companion, a child of that Chromium, stays
 * on the namespace's own loopback, as on a real machine.
 *
 * The servers (signaling, website) listen on SERVICE_ADDRESS, an address on this machine's loopback device,
 * so that they stay up for everyone else while the veth is down; the client reaches them through the veth.
 * The website therefore sees the client's own address, CLIENT_ADDRESS, for any direct connection: a leak
 * cannot hide behind a failed connect.
 *
 * Needs root (ip netns, veth). One chaos run at a time: the names are fixed, and a lock file says who runs.
 */
import { execFile } from 'node:child_process';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const NAMESPACE = 'upchaos';
const HOST_LINK = 'upchaos0';
const CLIENT_LINK = 'upchaos1';
const HOST_ADDRESS = '10.231.0.1';
export const CLIENT_ADDRESS = '10.231.0.2';
/** Where the signaling server and the website listen (on this machine's lo, reached by the client via veth). */
export const SERVICE_ADDRESS = '10.231.1.1';
const LOCK_FILE = '/tmp/underpass-chaos.lock';

async function ip(...args: string[]): Promise<void> {
  await run('ip', args, { timeout: 10_000 });
}

async function quietly(step: () => Promise<unknown>): Promise<void> {
  await step().catch(() => undefined);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class ClientNetwork {
  private down = false;

  private constructor(
    /** A Chromium to launch instead of the real one: the real one, inside the namespace. */
    readonly chromiumPath: string,
  ) {}

  /** Takes the lock, removes what a killed earlier run left, and builds the namespace. */
  static async create(workDir: string, chromium: string): Promise<ClientNetwork> {
    const holder = Number((await readFile(LOCK_FILE, 'utf8').catch(() => '')).trim());
    if (holder && holder !== process.pid && alive(holder)) {
      throw new Error(`another chaos run (pid ${holder}) holds ${LOCK_FILE}; one run at a time`);
    }
    await writeFile(LOCK_FILE, String(process.pid));
    await ClientNetwork.removeLeftovers();
    try {
      await ip('netns', 'add', NAMESPACE);
      await ip('link', 'add', HOST_LINK, 'type', 'veth', 'peer', 'name', CLIENT_LINK);
      await ip('link', 'set', CLIENT_LINK, 'netns', NAMESPACE);
      await ip('addr', 'add', `${HOST_ADDRESS}/24`, 'dev', HOST_LINK);
      await ip('link', 'set', HOST_LINK, 'up');
      await ip('addr', 'add', `${SERVICE_ADDRESS}/32`, 'dev', 'lo');
      await ip('-n', NAMESPACE, 'link', 'set', 'lo', 'up');
      await ip('-n', NAMESPACE, 'addr', 'add', `${CLIENT_ADDRESS}/24`, 'dev', CLIENT_LINK);
      await ip('-n', NAMESPACE, 'link', 'set', CLIENT_LINK, 'up');
      // Chromium gathers no WebRTC candidates without a default route (PLATFORM-NOTES).
      await ip('-n', NAMESPACE, 'route', 'add', 'default', 'via', HOST_ADDRESS);
    } catch (error) {
      await ClientNetwork.removeLeftovers();
      throw error;
    }
    // `ip netns exec` enters the namespace and execs, so the pid Playwright sees is Chromium's own.
    const wrapper = join(workDir, 'chromium-in-client-namespace.sh');
    await writeFile(wrapper, `#!/bin/sh\nexec ip netns exec ${NAMESPACE} '${chromium}' "$@"\n`);
    await chmod(wrapper, 0o755);
    return new ClientNetwork(wrapper);
  }

  private static async removeLeftovers(): Promise<void> {
    await quietly(() => ip('netns', 'del', NAMESPACE));
    await quietly(() => ip('link', 'del', HOST_LINK));
    await quietly(() => ip('addr', 'del', `${SERVICE_ADDRESS}/32`, 'dev', 'lo'));
  }

  /** Cuts the client off: packets to and from it are dropped until `restore`. */
  async drop(): Promise<void> {
    await ip('link', 'set', HOST_LINK, 'down');
    this.down = true;
  }

  async restore(): Promise<void> {
    await ip('link', 'set', HOST_LINK, 'up');
    this.down = false;
  }

  get isDown(): boolean {
    return this.down;
  }

  /** The pids of processes inside the namespace (the client's Chromium and its companion). */
  async pids(): Promise<number[]> {
    const { stdout } = await run('ip', ['netns', 'pids', NAMESPACE], { timeout: 10_000 });
    return stdout
      .split('\n')
      .map((line) => Number(line.trim()))
      .filter((pid) => Number.isInteger(pid) && pid > 0);
  }

  async close(): Promise<void> {
    await ClientNetwork.removeLeftovers();
    await rm(LOCK_FILE, { force: true });
  }
}
