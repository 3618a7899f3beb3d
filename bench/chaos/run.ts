/**
 * npm run chaos — the network under faults. A real client browser (Protect on, in its own network namespace)
 * and volunteer browsers, two exits and the signaling server (one phase with one instance in memory, one with
 * two instances on Redis), page loads and hash-checked downloads all the time, while parts are killed and
 * restarted at random. Prints a table and writes bench/results/chaos.json (see bench/chaos/README.md).
 *
 *   npm run chaos -- [--duration 10m] [--mode both|memory|redis] [--volunteers 2] [--seed N] [--check]
 *
 * --duration (env CHAOS_DURATION) is the time under faults, split between the phases; setting up and tearing
 * down come on top. --check exits with status 1 when any goal in the table is missed: a connection leaked, a byte
 * corrupted, a fault not recovered from, or a recovery slower than its goal.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { report, type BenchResult, type Goal } from '../lib/report';
import { runPhase, type PhaseResult, type SignalingMode } from './phase';
import { failuresByCode, leakedConnections, summarizeFaults } from './summary';

const USAGE = `npm run chaos -- [--duration 10m] [--mode both|memory|redis] [--volunteers 2] [--seed N] [--check]`;

/** "90", "90s", "2m", "1.5m" → milliseconds. */
export function parseDuration(text: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)(s|m)?$/.exec(text.trim());
  if (!match) throw new Error(`--duration must be seconds ("90", "90s") or minutes ("2m"), not "${text}"`);
  const ms = Number(match[1]) * (match[2] === 'm' ? 60_000 : 1_000);
  if (ms < 30_000 || ms > 24 * 3_600_000) throw new Error('--duration must be between 30 s and 24 h');
  return ms;
}

/** mulberry32: a small seeded generator, so that a run's sequence of faults can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function metric(name: string, value: number, unit: string, runs: number): BenchResult {
  return { metric: name, value, unit, runs };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      duration: { type: 'string' },
      mode: { type: 'string' },
      volunteers: { type: 'string' },
      seed: { type: 'string' },
      check: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const durationMs = parseDuration(values.duration ?? process.env['CHAOS_DURATION'] ?? '10m');
  const modeText = values.mode ?? 'both';
  if (!['both', 'memory', 'redis'].includes(modeText))
    throw new Error('--mode must be both, memory or redis');
  const modes: SignalingMode[] = modeText === 'both' ? ['memory', 'redis'] : [modeText as SignalingMode];
  const volunteers = Number(values.volunteers ?? '2');
  if (!Number.isInteger(volunteers) || volunteers < 1 || volunteers > 4)
    throw new Error('--volunteers: 1 to 4');
  const seed = values.seed === undefined ? Date.now() % 2 ** 31 : Number(values.seed);
  if (!Number.isInteger(seed)) throw new Error('--seed must be a whole number');
  const random = seeded(seed);
  const logDir = fileURLToPath(new URL('../results/chaos-logs/', import.meta.url));
  await mkdir(logDir, { recursive: true });
  const began = Date.now();
  const log = (line: string) =>
    console.log(`[${((Date.now() - began) / 1000).toFixed(1).padStart(6)} s] ${line}`);
  log(
    `seed ${seed}, ${durationMs / 1000} s under faults, phases: ${modes.join(', ')}, volunteers: ${volunteers}`,
  );

  const phases: PhaseResult[] = [];
  for (const mode of modes) {
    log(`── phase: signaling ${mode} ──`);
    phases.push(
      await runPhase({
        mode,
        durationMs: durationMs / modes.length,
        volunteers,
        random,
        logDir: join(logDir),
        log,
      }),
    );
  }

  const requests = phases.flatMap((p) => p.requests);
  const faults = phases.flatMap((p) => p.faults);
  const leaked = phases.reduce((n, p) => n + leakedConnections(p.witnessed, p.exitAddresses), 0);
  const witnessed = phases.reduce((n, p) => n + p.witnessed.length, 0);
  const corrupted = requests.reduce((n, r) => n + r.corruptedBytes, 0);
  const succeeded = requests.filter((r) => r.ok).length;
  const results: BenchResult[] = [
    metric('duration_under_faults_s', Math.round(durationMs / 1000), 's', phases.length),
    metric('requests_attempted', requests.length, 'requests', 1),
    metric('requests_succeeded', succeeded, 'requests', 1),
    metric('page_loads_succeeded', requests.filter((r) => r.ok && r.kind === 'page').length, 'requests', 1),
    metric(
      'downloads_succeeded',
      requests.filter((r) => r.ok && r.kind === 'download').length,
      'requests',
      1,
    ),
    metric('requests_failed', requests.length - succeeded, 'requests', 1),
    ...failuresByCode(requests).map(([code, count]) =>
      metric(`requests_failed_${code}`, count, 'requests', 1),
    ),
    metric('connections_witnessed', witnessed, 'connections', 1),
    metric('direct_connections_leaked', leaked, 'connections', 1),
    metric('bytes_corrupted', corrupted, 'bytes', 1),
    metric('faults_injected', faults.length, 'faults', 1),
    metric('user_repairs', faults.filter((f) => f.userRepair).length, 'faults', 1),
  ];
  for (const phase of phases) {
    for (const summary of summarizeFaults(phase.faults, phase.requests)) {
      if (summary.kind !== 'signaling_restart') continue;
      const runs = summary.unrecovered + (summary.recovery?.count ?? 0);
      if (summary.recovery) {
        results.push(
          metric(`${phase.mode}_signaling_restart_recovery_p95_ms`, summary.recovery.p95, 'ms', runs),
        );
      }
      results.push(
        metric(`${phase.mode}_signaling_restart_failed_requests`, summary.failedRequests, 'requests', runs),
      );
    }
  }
  for (const summary of summarizeFaults(faults, requests)) {
    const runs = summary.unrecovered + (summary.recovery?.count ?? 0);
    if (runs === 0) continue;
    if (summary.recovery) {
      results.push(
        metric(`${summary.kind}_recovery_p50_ms`, summary.recovery.p50, 'ms', summary.recovery.count),
      );
      results.push(
        metric(`${summary.kind}_recovery_p95_ms`, summary.recovery.p95, 'ms', summary.recovery.count),
      );
      results.push(
        metric(`${summary.kind}_recovery_max_ms`, summary.recovery.max, 'ms', summary.recovery.count),
      );
    }
    if (summary.kind === 'network_drop' && summary.afterRestore) {
      // A drop lasts as long as the harness chooses; what the code costs is the time after the network is back.
      const after = summary.afterRestore;
      results.push(metric('network_drop_recovery_after_restore_p50_ms', after.p50, 'ms', after.count));
      results.push(metric('network_drop_recovery_after_restore_p95_ms', after.p95, 'ms', after.count));
    }
    results.push(metric(`${summary.kind}_unrecovered`, summary.unrecovered, 'faults', runs));
    results.push(metric(`${summary.kind}_failed_requests`, summary.failedRequests, 'requests', runs));
  }

  const zero: Goal = { text: '= 0', met: (v) => v === 0 };
  const within = (ms: number): Goal => ({ text: `<= ${ms}`, met: (v) => v <= ms });
  const goals: Record<string, Goal> = {
    direct_connections_leaked: zero,
    bytes_corrupted: zero,
    relay_loss_recovery_p95_ms: within(5_000),
    exit_loss_recovery_p95_ms: within(5_000),
    signaling_restart_recovery_p95_ms: within(10_000),
    signaling_restart_failed_requests: zero,
    memory_signaling_restart_failed_requests: zero,
    redis_signaling_restart_failed_requests: zero,
    relay_loss_unrecovered: zero,
    exit_loss_unrecovered: zero,
    signaling_restart_unrecovered: zero,
    companion_loss_unrecovered: zero,
    network_drop_unrecovered: zero,
    user_repairs: zero,
  };
  const missed = await report('chaos', results, goals);
  const leaks = phases.flatMap((p) => p.witnessed.filter((address) => !p.exitAddresses.includes(address)));
  if (leaks.length > 0) console.log(`\nleaked connections came from: ${[...new Set(leaks)].join(', ')}`);
  const details = new Map<string, number>();
  for (const r of requests) {
    if (!r.ok)
      details.set(`${r.code}: ${r.detail ?? ''}`, (details.get(`${r.code}: ${r.detail ?? ''}`) ?? 0) + 1);
  }
  const top = [...details.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8);
  if (top.length > 0)
    console.log(`\nfailures, most frequent first:\n${top.map(([d, n]) => `  ${n} × ${d}`).join('\n')}`);
  console.log(`\nseed ${seed} (replay the faults' order with --seed ${seed}); servers' logs in ${logDir}`);
  if (values.check && missed.length > 0) {
    console.error(`chaos: goals missed: ${missed.join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(`chaos: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
