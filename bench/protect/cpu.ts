import { readFileSync, readdirSync } from 'node:fs';

/**
 * With BENCH_PROTECT_TRACE, on Linux: CPU time per process over a stretch of the benchmark, from /proc, so
 * that a slow protected load can be traced to the process that spent the time (this machine's two cores are
 * busy for the whole of a load, direct or protected). Elsewhere the snapshots are empty.
 */

/** /proc counts in clock ticks; USER_HZ is 100 on every Linux this runs on. */
const MS_PER_TICK = 10;

/** CPU milliseconds used so far, per `pid label`. */
export type CpuSnapshot = Map<string, number>;

export function cpuSnapshot(): CpuSnapshot {
  const snapshot: CpuSnapshot = new Map();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return snapshot;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name, which may itself hold spaces and parentheses: utime is the 12th, stime the 13th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]);
      if (ticks > 0) snapshot.set(`${pid} ${processLabel(pid)}`, ticks * MS_PER_TICK);
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return snapshot;
}

/** Milliseconds of CPU the whole machine spent busy (all cores, not idle or waiting for I/O). */
export function machineBusyMs(): number {
  try {
    const [user, nice, system, , , irq, softirq] = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0)) * MS_PER_TICK;
  } catch {
    return NaN;
  }
}

/** Adds what each process used between `before` and `after` to `total` (for loads that are not back to back). */
export function addCpuUsed(total: CpuSnapshot, before: CpuSnapshot, after: CpuSnapshot): void {
  for (const [key, ms] of after) {
    const used = ms - (before.get(key) ?? 0);
    if (used > 0) total.set(key, (total.get(key) ?? 0) + used);
  }
}

/** The processes that used the most CPU between two snapshots, one line each, most first. */
export function cpuDiff(before: CpuSnapshot, after: CpuSnapshot, top = 14): string {
  const rows: [string, number][] = [];
  for (const [key, ms] of after) {
    const used = ms - (before.get(key) ?? 0);
    if (used > 0) rows.push([key, used]);
  }
  return rows
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, ms]) => `    ${String(ms).padStart(6)} ms  ${key}`)
    .join('\n');
}

/**
 * "chromium renderer bench-client", "chromium utility:network.mojom.NetworkService bench-volunteer",
 * "node …/underpass-companion.js native": enough to tell the two browsers, their process types and our Node
 * programs apart. Chromium rewrites its children's argv into one space-separated string.
 */
function processLabel(pid: string): string {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0 ]/).filter(Boolean);
  // Kernel threads have no command line, only a name; a kworker's name says what it is doing now
  // ("kworker/0:0-events"), which would make it a new process in every snapshot.
  if (argv.length === 0) return `[${readFileSync(`/proc/${pid}/comm`, 'utf8').trim().replace(/-.*$/, '')}]`;
  const flag = (name: string) => argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  const profile = /underpass-(bench-[a-z]+)/.exec(argv.join(' '))?.[1] ?? '';
  const type = flag('type');
  if (profile || type) {
    const subtype = flag('utility-sub-type');
    const kind = type ? `${type}${subtype ? `:${subtype}` : ''}` : 'browser';
    const extension = argv.includes('--extension-process') ? ' (extension)' : '';
    return `chromium ${kind}${extension} ${profile}`.trim();
  }
  const program = argv[0]?.split('/').pop() ?? '?';
  const args = argv
    .slice(1)
    .filter((arg) => !arg.startsWith('-'))
    .map((arg) => arg.split('/').slice(-2).join('/'));
  return `${program} ${args.join(' ')}`.slice(0, 80);
}
