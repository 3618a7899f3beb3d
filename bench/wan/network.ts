/**
 * The WAN harness: one network namespace per role (client, relay, exit, website, signaling…), each with one
 * TUN device owned by the link emulator (forwarder.py), which joins every pair of roles that has a link with
 * its own delay, jitter, loss, rate and queue per direction. Addresses come from 198.51.100.0/24 (TEST-NET-2,
 * RFC 5737) inside the run's own namespaces, and each namespace routes only that range to its device: nothing
 * can leave the machine, and two roles never share a namespace (wrtc offers 127.0.0.1 candidates, and two peers
 * in one namespace would talk past the emulator: PLATFORM-NOTES, networks).
 *
 * Every run has its own name prefix (`upw` + 5 random hex digits) and a lock file holding its pid
 * (LOCK_DIR/<prefix>.pid), so two runs never share a namespace or a device. At creation, namespaces of runs
 * whose pid is dead (or that have no lock) are removed with what still runs in them; SIGINT/SIGTERM and
 * `close()` tear the run down; a SIGKILL leaves namespaces for the next run to sweep (the devices vanish with the
 * emulator, which exits when its stdin closes). Needs root, `ip` (iproute2), python3 and /dev/net/tun.
 */
import { execFile, fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const FORWARDER = fileURLToPath(new URL('./forwarder.py', import.meta.url));
/** tmpfs: emptied at boot, when every namespace is gone too. */
export const LOCK_DIR = '/run/underpass-wan';
const PREFIX = 'upw';
const SUBNET = '198.51.100';
const MAX_ROLES = 32;
/** A run's namespaces and work directory: `<prefix>-…`. */
const RUN_NAME = /^(upw[0-9a-f]{5})-/;
const ROLE_NAME = /^[a-z][a-z0-9]{0,9}$/;

/** One direction of an emulated link. */
export type DirectionSpec = {
  delayMs: number;
  jitterMs?: number;
  /** Probability that a packet is lost, 0..1. */
  loss?: number;
  rateMbps: number;
  /** Tail drop once a packet would wait longer than this for the wire. */
  queueMs: number;
};
/** A link between two roles; `ab` carries packets from `a` to `b`. */
export type LinkSpec = { a: string; b: string; ab: DirectionSpec; ba: DirectionSpec };
/** The same in both directions. */
export const symmetric = (a: string, b: string, spec: DirectionSpec): LinkSpec => ({
  a,
  b,
  ab: spec,
  ba: spec,
});

export type DirectionStats = {
  delivered: number;
  bytes: number;
  queueDrops: number;
  lost: number;
  /** The queue's fill now: how long a packet admitted now would wait for the wire. */
  queuedMs: number;
};
/** Per direction, keyed `a>b` with role names. */
export type LinkStats = { directions: Record<string, DirectionStats>; unrouted: number };

export type WanErrorCode = 'wan-unavailable' | 'wan-setup-failed' | 'wan-emulator';
export class WanError extends Error {
  constructor(
    readonly code: WanErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface WanNetworkOptions {
  roles: readonly string[];
  links: readonly LinkSpec[];
  /** Seed of the emulator's loss and jitter draws (default: random). */
  seed?: number;
  /** Tear down and exit on SIGINT/SIGTERM (default true; tests turn it off). */
  handleSignals?: boolean;
}

/** Why the harness cannot run here, or undefined when it can. */
export async function wanUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return 'needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'needs root (ip netns, TUN devices)';
  for (const [command, args] of [
    ['ip', ['-V']],
    ['python3', ['--version']],
  ] as const) {
    try {
      await run(command, [...args], { timeout: 10_000 });
    } catch {
      return `needs ${command} on the PATH`;
    }
  }
  try {
    await access('/dev/net/tun');
  } catch {
    return 'needs /dev/net/tun';
  }
  return undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function ip(...args: string[]): Promise<string> {
  return (await run('ip', args, { timeout: 10_000 })).stdout;
}

async function namespaces(): Promise<string[]> {
  const out = await ip('netns', 'list');
  return out
    .split('\n')
    .map((line) => line.split(' ')[0]!.trim())
    .filter(Boolean);
}

/** Kills what still runs in a namespace (processes of a run of ours), then removes it. */
async function removeNamespace(name: string): Promise<void> {
  const pids = await ip('netns', 'pids', name).catch(() => '');
  for (const pid of pids.split('\n').map(Number)) {
    if (Number.isInteger(pid) && pid > 1 && pid !== process.pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  await ip('netns', 'del', name).catch(() => undefined);
}

/** Whether the run with this prefix is alive: its lock names a live pid. A dead run's lock is removed. */
async function runAlive(prefix: string): Promise<boolean> {
  const file = join(LOCK_DIR, `${prefix}.pid`);
  const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
  if (pid && alive(pid)) return true;
  await rm(file, { force: true });
  return false;
}

/**
 * Removes the namespaces (and work directories) of runs that are dead: their lock's pid is gone, or they have no
 * lock. Names are listed before locks are read, and a run writes its lock before it makes any name: a run
 * starting meanwhile is never taken for a dead one.
 */
export async function sweepLeftovers(): Promise<string[]> {
  await mkdir(LOCK_DIR, { recursive: true });
  const names = await namespaces();
  const directories = await readdir(tmpdir());
  const verdicts = new Map<string, Promise<boolean>>();
  const dead = async (name: string) => {
    const prefix = RUN_NAME.exec(name)?.[1];
    if (!prefix) return false;
    if (!verdicts.has(prefix)) verdicts.set(prefix, runAlive(prefix));
    return !(await verdicts.get(prefix));
  };
  const removed: string[] = [];
  for (const name of names) {
    if (!(await dead(name))) continue;
    await removeNamespace(name);
    removed.push(name);
  }
  for (const name of directories)
    if (await dead(name)) await rm(join(tmpdir(), name), { recursive: true, force: true });
  // Locks of dead runs that left no names behind.
  for (const file of await readdir(LOCK_DIR))
    if (file.endsWith('.pid')) await runAlive(file.slice(0, -'.pid'.length));
  return removed;
}

const ALLOWED_CC = '/proc/sys/net/ipv4/tcp_allowed_congestion_control';
/**
 * A namespace other than the first may only default to a congestion control on the host's allowed list, which
 * holds the host's default (BBR here) and reno. CUBIC, what browsers' hosts run, is added to that list: it lets
 * unprivileged sockets choose CUBIC and changes nobody's default.
 */
async function allowCubic(): Promise<void> {
  const allowed = (await readFile(ALLOWED_CC, 'utf8')).trim().split(/\s+/);
  if (!allowed.includes('cubic')) await writeFile(ALLOWED_CC, [...allowed, 'cubic'].join(' '));
}

const toWire = (spec: DirectionSpec) => ({
  delay_ms: spec.delayMs,
  jitter_ms: spec.jitterMs ?? 0,
  loss: spec.loss ?? 0,
  rate_mbps: spec.rateMbps,
  queue_ms: spec.queueMs,
});

/** The emulator process: JSON commands on its stdin, one JSON line back for each. */
class Emulator {
  private readonly replies: ((line: string) => void)[] = [];
  private readonly exited: Promise<void>;

  constructor(private readonly child: ChildProcess) {
    const lines = createInterface({ input: child.stdout! });
    let onReady: (() => void) | undefined;
    this.ready = new Promise((resolve, reject) => {
      onReady = resolve;
      child.once('exit', (code) => reject(new WanError('wan-emulator', `the emulator exited (${code})`)));
    });
    lines.on('line', (line) => {
      if (onReady && line.includes('"ready"')) {
        onReady();
        onReady = undefined;
      } else this.replies.shift()?.(line);
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  readonly ready: Promise<void>;

  async command(request: object): Promise<Record<string, unknown>> {
    const line = await new Promise<string>((resolve, reject) => {
      if (this.child.exitCode !== null) return reject(new WanError('wan-emulator', 'the emulator is gone'));
      this.replies.push(resolve);
      this.child.stdin!.write(JSON.stringify(request) + '\n');
    });
    const reply = JSON.parse(line) as Record<string, unknown>;
    if (typeof reply.error === 'string') throw new WanError('wan-emulator', reply.error);
    return reply;
  }

  /** CPU seconds the emulator has used so far (user + system, from /proc; Linux clock ticks are 1/100 s). */
  async cpuSeconds(): Promise<number> {
    const stat = await readFile(`/proc/${this.child.pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }

  /** Closing its stdin ends it (as the parent's death does); killed if it lingers. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin!.end();
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 2_000);
    await this.exited;
    clearTimeout(killer);
  }
}

export class WanNetwork {
  private closing: Promise<void> | undefined;
  private readonly children = new Set<ChildProcess>();
  private readonly onSignal = (signal: NodeJS.Signals) => {
    void this.close().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };

  private constructor(
    /** This run's name prefix: its namespaces are `<prefix>-<role>`. */
    readonly prefix: string,
    private readonly roles: readonly string[],
    private readonly emulator: Emulator,
    private readonly workDir: string,
    private readonly handleSignals: boolean,
  ) {}

  static async create(options: WanNetworkOptions): Promise<WanNetwork> {
    const unavailable = await wanUnavailable();
    if (unavailable) throw new WanError('wan-unavailable', unavailable);
    const roles = [...options.roles];
    if (roles.length === 0 || roles.length > MAX_ROLES || new Set(roles).size !== roles.length)
      throw new WanError('wan-setup-failed', `1 to ${MAX_ROLES} distinct roles`);
    for (const role of roles)
      if (!ROLE_NAME.test(role)) throw new WanError('wan-setup-failed', `bad role name ${role}`);
    await sweepLeftovers();
    await allowCubic();
    // Claimed with O_EXCL: a prefix two runs drew alike is refused to the second.
    const prefix = `${PREFIX}${randomBytes(3).toString('hex').slice(0, 5)}`;
    await writeFile(join(LOCK_DIR, `${prefix}.pid`), String(process.pid), { flag: 'wx' });
    const workDir = await mkdtemp(join(tmpdir(), `${prefix}-`));
    const device = (i: number) => `${prefix}t${i}`;
    const config = {
      devices: roles.map((_, i) => ({ name: device(i), address: `${SUBNET}.${i + 1}` })),
      links: WanNetwork.wireLinks(roles, device, options.links),
      ...(options.seed === undefined ? {} : { seed: options.seed }),
    };
    await writeFile(join(workDir, 'emulator.json'), JSON.stringify(config));
    const emulator = new Emulator(
      spawn('python3', [FORWARDER, join(workDir, 'emulator.json')], { stdio: ['pipe', 'pipe', 'inherit'] }),
    );
    const network = new WanNetwork(prefix, roles, emulator, workDir, options.handleSignals ?? true);
    if (network.handleSignals) {
      process.once('SIGINT', network.onSignal);
      process.once('SIGTERM', network.onSignal);
    }
    try {
      await emulator.ready;
      for (const [i, role] of roles.entries()) await network.addNamespace(role, device(i), i);
    } catch (error) {
      await network.close();
      throw error instanceof WanError ? error : new WanError('wan-setup-failed', String(error));
    }
    return network;
  }

  private static wireLinks(
    roles: readonly string[],
    device: (i: number) => string,
    links: readonly LinkSpec[],
  ): object[] {
    const deviceOf = (role: string) => {
      const index = roles.indexOf(role);
      if (index < 0) throw new WanError('wan-setup-failed', `a link names an unknown role ${role}`);
      return device(index);
    };
    return links.map((link) => ({
      a: deviceOf(link.a),
      b: deviceOf(link.b),
      ab: toWire(link.ab),
      ba: toWire(link.ba),
    }));
  }

  private async addNamespace(role: string, device: string, index: number): Promise<void> {
    const ns = this.namespace(role);
    await ip('netns', 'add', ns);
    await ip('link', 'set', device, 'netns', ns);
    // IPv6 off: the emulator routes IPv4 only, and link-local candidates would only slow ICE down. CUBIC, as
    // browsers' hosts have (this machine defaults to BBR).
    await run(
      'ip',
      [
        'netns',
        'exec',
        ns,
        'sysctl',
        '-qw',
        'net.ipv6.conf.all.disable_ipv6=1',
        'net.ipv6.conf.default.disable_ipv6=1',
        'net.ipv4.tcp_congestion_control=cubic',
      ],
      { timeout: 10_000 },
    );
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    await ip('-n', ns, 'addr', 'add', `${SUBNET}.${index + 1}/32`, 'dev', device);
    await ip('-n', ns, 'link', 'set', device, 'mtu', '1500', 'up');
    await ip('-n', ns, 'route', 'add', `${SUBNET}.0/24`, 'dev', device);
  }

  namespace(role: string): string {
    if (!this.roles.includes(role)) throw new WanError('wan-setup-failed', `no role ${role}`);
    return `${this.prefix}-${role}`;
  }

  address(role: string): string {
    const index = this.roles.indexOf(role);
    if (index < 0) throw new WanError('wan-setup-failed', `no role ${role}`);
    return `${SUBNET}.${index + 1}`;
  }

  /** Replaces every link; queues and counters start empty. */
  async setLinks(links: readonly LinkSpec[]): Promise<void> {
    const device = (i: number) => `${this.prefix}t${i}`;
    await this.emulator.command({ op: 'links', links: WanNetwork.wireLinks(this.roles, device, links) });
  }

  /** The emulator's counters since the links were last set. */
  async stats(): Promise<LinkStats> {
    const reply = (await this.emulator.command({ op: 'stats' })) as {
      stats: Record<
        string,
        { delivered: number; bytes: number; queue_drops: number; lost: number; queued_ms: number }
      >;
      unrouted: number;
    };
    const roleOf = (name: string) => this.roles[Number(name.slice(this.prefix.length + 1))] ?? name;
    const directions: Record<string, DirectionStats> = {};
    for (const [key, s] of Object.entries(reply.stats)) {
      const [from, to] = key.split('>') as [string, string];
      directions[`${roleOf(from)}>${roleOf(to)}`] = {
        delivered: s.delivered,
        bytes: s.bytes,
        queueDrops: s.queue_drops,
        lost: s.lost,
        queuedMs: s.queued_ms,
      };
    }
    return { directions, unrouted: reply.unrouted };
  }

  /** CPU seconds the emulator has used so far: near one core, it is the bottleneck, not the links. */
  emulatorCpuSeconds(): Promise<number> {
    return this.emulator.cpuSeconds();
  }

  /** A Node script (run through tsx) in a role's namespace, with an IPC channel to this process. */
  fork(role: string, file: string, args: readonly string[] = []): ChildProcess {
    const child = fork(file, [...args], {
      // fork spawns execPath with execArgv before the script: `ip netns exec` enters the namespace, then execs node.
      execPath: 'ip',
      execArgv: ['netns', 'exec', this.namespace(role), process.execPath, '--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.track(child);
    return child;
  }

  /** Any command in a role's namespace. */
  spawn(role: string, command: string, args: readonly string[] = []): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.namespace(role), command, ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.track(child);
    return child;
  }

  private track(child: ChildProcess): void {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
  }

  close(): Promise<void> {
    this.closing ??= this.teardown();
    return this.closing;
  }

  private async teardown(): Promise<void> {
    if (this.handleSignals) {
      process.off('SIGINT', this.onSignal);
      process.off('SIGTERM', this.onSignal);
    }
    for (const child of this.children) if (child.exitCode === null) child.kill('SIGKILL');
    // What is left in a namespace (a grandchild) goes with it.
    for (const role of this.roles) await removeNamespace(this.namespace(role));
    await this.emulator.stop();
    await rm(this.workDir, { recursive: true, force: true });
    await rm(join(LOCK_DIR, `${this.prefix}.pid`), { force: true });
  }
}
