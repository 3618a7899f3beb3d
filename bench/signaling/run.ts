/**
 * npm run bench:signaling — the signaling server under load, each part in its own process: the server (the
 * real CLI), one process of idle relays that answer every offer, one process of clients sending path
 * requests at rising rates. A match is timed at the client from the request sent to the relay's answer
 * back (path-request → path → offer → link + offer at the relay → answer → client). Then the same with two
 * instances sharing a real redis-server. Prints a table; writes bench/results/signaling.json.
 *
 *   env BENCH_SIGNALING_RELAYS (default 10000)        idle relays on the single instance
 *       BENCH_SIGNALING_REDIS_RELAYS (default 2000)   relays in the Redis runs
 *       BENCH_SIGNALING_CLIENTS (default 100)         client connections the requests are spread over
 *       BENCH_SIGNALING_STEP_MS (default 3000)        how long each rate is held
 *
 * A rate is held when ≥ 98% of its requests complete and their p99 is ≤ 50 ms; a rate that is not held is
 * tried again, up to BENCH_SIGNALING_ATTEMPTS (default 3) times, before the ladder stops. matches_per_s is
 * the highest rate held; its `runs` is the number of attempts that took.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { x25519 } from '@noble/curves/ed25519.js';
import WebSocket from 'ws';
import { SignalingClient, encodeExitKey, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { freePort } from '../lib/ports.js';
import { startRedisServer, type RedisServer } from '../lib/redis-server.js';
import type { LoadCommand, LoadReport } from './load-process.js';
import { report, type BenchResult } from '../lib/report.js';

const RELAYS = Number(process.env.BENCH_SIGNALING_RELAYS ?? 10_000);
const REDIS_RELAYS = Number(process.env.BENCH_SIGNALING_REDIS_RELAYS ?? 2_000);
const CLIENTS = Number(process.env.BENCH_SIGNALING_CLIENTS ?? 100);
const STEP_MS = Number(process.env.BENCH_SIGNALING_STEP_MS ?? 3_000);
const RATES = [250, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 5000, 6000, 8000];
const P99_BOUND_MS = 50;
const ATTEMPTS = Number(process.env.BENCH_SIGNALING_ATTEMPTS ?? 3);
const RELAY_CAPACITY = 10;
const here = fileURLToPath(new URL('.', import.meta.url));
const bin = join(here, '..', '..', 'signaling-server', 'bin', 'underpass-signaling.js');

const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;
const quantile = (sorted: number[], q: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// --- processes -------------------------------------------------------------------------------------------

type Instance = { url: string; http: string; child: ChildProcess };

async function startInstance(redis?: RedisServer): Promise<Instance> {
  const port = await freePort();
  const args = [
    bin,
    ...['--port', String(port), '--host', '127.0.0.1', '--log-level', 'warn'],
    ...['--max-peers', '50000', '--max-connections-per-address', '100000'],
    ...['--messages-per-second', '100000', '--message-burst', '100000', '--max-links-per-client', '1000'],
    ...(redis ? ['--redis', redis.url, '--redis-expiry-ms', '10000'] : []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  const http = `http://127.0.0.1:${port}/`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(http + 'healthz')).ok) return { url: `ws://127.0.0.1:${port}/`, http, child };
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error('the signaling server did not start');
}

async function stopInstance(instance: Instance): Promise<void> {
  if (instance.child.exitCode !== null) return;
  const exited = new Promise((r) => instance.child.once('exit', r));
  instance.child.kill('SIGTERM');
  await exited;
}

async function metric(instance: Instance, name: string): Promise<number> {
  const text = await (await fetch(instance.http + 'metrics')).text();
  for (const line of text.split('\n'))
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
  return NaN;
}

class LoadProcess {
  private readonly child = fork(join(here, 'load-process.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });

  send(command: LoadCommand): void {
    this.child.send(command);
  }

  next<T extends LoadReport['type']>(type: T): Promise<Extract<LoadReport, { type: T }>> {
    return new Promise((resolve) => {
      const onMessage = (report: LoadReport): void => {
        if (report.type !== type) return;
        this.child.off('message', onMessage);
        resolve(report as Extract<LoadReport, { type: T }>);
      };
      this.child.on('message', onMessage);
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.send({ type: 'stop' });
    await exited;
  }
}

async function connectExit(url: string): Promise<SignalingClient> {
  const secret = x25519.utils.randomSecretKey();
  const exit = new SignalingClient({
    url,
    WebSocket: WebSocket as unknown as WebSocketConstructorLike,
    hello: { role: 'exit', exitKey: encodeExitKey(x25519.getPublicKey(secret)), capacity: 1000 },
    exitSecretKey: secret,
  });
  await exit.connect();
  return exit;
}

// --- one scenario: relays + clients against some instances --------------------------------------------

type Step = {
  rate: number;
  achieved: number;
  p50: number;
  p99: number;
  lost: number;
  /** CPU time of the signaling server process(es) per completed match, in microseconds. */
  cpuUsPerMatch: number;
  errors: string;
  /** Attempts at this rate until it was held. */
  tries?: number;
};
type Scenario = { connectedRelays: number; steps: Step[]; best: Step | undefined; rssPerPeerKib?: number };

async function scenario(label: string, instances: Instance[], relays: number): Promise<Scenario> {
  const urls = instances.map((i) => i.url);
  const exit = await connectExit(urls[0]!);
  await sleep(500);
  const rssBefore = await metric(instances[0]!, 'underpass_signaling_process_resident_memory_bytes');

  const relayLoad = new LoadProcess();
  const connected = relayLoad.next('connected');
  relayLoad.send({ type: 'relays', urls, count: relays, capacity: RELAY_CAPACITY });
  const relayReport = await connected;
  let connectedRelays = 0;
  for (const instance of instances)
    connectedRelays += await metric(instance, 'underpass_signaling_peers{role="relay"}');
  console.log(`${label}: ${connectedRelays} relays connected (${relayReport.failed} failed)`);

  let rssPerPeerKib: number | undefined;
  if (instances.length === 1) {
    await sleep(2_000);
    const rssAfter = await metric(instances[0]!, 'underpass_signaling_process_resident_memory_bytes');
    rssPerPeerKib = (rssAfter - rssBefore) / connectedRelays / 1024;
  }

  const clientLoad = new LoadProcess();
  const clientsUp = clientLoad.next('connected');
  clientLoad.send({ type: 'clients', urls, count: CLIENTS });
  await clientsUp;

  const steps: Step[] = [];
  let best: Step | undefined;
  const serverCpuSeconds = async (): Promise<number> => {
    let total = 0;
    for (const instance of instances)
      total += await metric(instance, 'underpass_signaling_process_cpu_seconds_total');
    return total;
  };
  const attempt = async (rate: number): Promise<{ step: Step; held: boolean }> => {
    const cpuBefore = await serverCpuSeconds();
    const ran = clientLoad.next('ran');
    clientLoad.send({ type: 'run', rate, durationMs: STEP_MS });
    const report = await ran;
    const cpu = (await serverCpuSeconds()) - cpuBefore;
    const step: Step = {
      rate,
      achieved: round(report.completed / (STEP_MS / 1000), 0),
      p50: round(quantile(report.latencies, 0.5), 2),
      p99: round(quantile(report.latencies, 0.99), 2),
      lost: report.sent - report.completed,
      cpuUsPerMatch: report.completed > 0 ? round((cpu * 1e6) / report.completed, 0) : NaN,
      errors: Object.entries(report.errors)
        .map(([code, n]) => `${code}:${n}`)
        .join(' '),
    };
    steps.push(step);
    const held = report.completed >= 0.98 * report.sent && step.p99 <= P99_BOUND_MS;
    console.log(
      `${label}: rate ${String(rate).padStart(5)}/s → ${String(step.achieved).padStart(5)}/s  p50 ${step.p50} ms  p99 ${step.p99} ms  server CPU ${step.cpuUsPerMatch} µs/match  lost ${step.lost} ${step.errors}${held ? '' : '  (not held)'}`,
    );
    return { step, held };
  };
  for (const rate of RATES) {
    // Up to ATTEMPTS tries: a stall of some other process on a shared machine should not end the ladder.
    let outcome = await attempt(rate);
    let tries = 1;
    while (!outcome.held && tries < ATTEMPTS) {
      outcome = await attempt(rate);
      tries++;
    }
    if (!outcome.held) break;
    best = { ...outcome.step, tries };
  }
  await clientLoad.stop();
  await relayLoad.stop();
  exit.close();
  return { connectedRelays, steps, best, rssPerPeerKib };
}

// --- main ------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const results: BenchResult[] = [];

  const single = await startInstance();
  let one: Scenario;
  try {
    one = await scenario('one instance', [single], RELAYS);
  } finally {
    await stopInstance(single);
  }
  results.push({ metric: 'connected_relays', value: one.connectedRelays, unit: 'relays', runs: 1 });
  const runs = one.best?.tries ?? 1;
  results.push({ metric: 'matches_per_s', value: one.best?.achieved ?? 0, unit: '1/s', runs });
  results.push({ metric: 'match_latency_p50_ms', value: one.best?.p50 ?? NaN, unit: 'ms', runs });
  results.push({ metric: 'match_latency_p99_ms', value: one.best?.p99 ?? NaN, unit: 'ms', runs });
  results.push({
    metric: 'server_cpu_us_per_match',
    value: one.best?.cpuUsPerMatch ?? NaN,
    unit: 'µs',
    runs,
  });
  results.push({
    metric: 'rss_per_peer_kib',
    value: round(one.rssPerPeerKib ?? NaN, 2),
    unit: 'KiB',
    runs: 1,
  });

  const redis = await startRedisServer();
  try {
    const alone = await startInstance(redis);
    let redisOne: Scenario;
    try {
      redisOne = await scenario('one instance + redis', [alone], REDIS_RELAYS);
    } finally {
      await stopInstance(alone);
    }
    const pair = [await startInstance(redis), await startInstance(redis)];
    let redisTwo: Scenario;
    try {
      redisTwo = await scenario('two instances + redis', pair, REDIS_RELAYS);
    } finally {
      for (const instance of pair) await stopInstance(instance);
    }
    const oneRate = one.best?.achieved ?? 0;
    const twoRate = redisTwo.best?.achieved ?? 0;
    results.push({
      metric: 'redis_one_instance_matches_per_s',
      value: redisOne.best?.achieved ?? 0,
      unit: '1/s',
      runs: redisOne.best?.tries ?? 1,
    });
    results.push({
      metric: 'redis_two_instances_cpu_us_per_match',
      value: redisTwo.best?.cpuUsPerMatch ?? NaN,
      unit: 'µs',
      runs: redisTwo.best?.tries ?? 1,
      baseline: { metric: 'server_cpu_us_per_match', value: one.best?.cpuUsPerMatch ?? NaN },
    });
    results.push({
      metric: 'redis_two_instances_matches_per_s',
      value: twoRate,
      unit: '1/s',
      runs: redisTwo.best?.tries ?? 1,
      baseline: { metric: 'matches_per_s', value: oneRate },
      ratio: oneRate > 0 ? round(twoRate / oneRate, 2) : 0,
    });
  } finally {
    await redis.stop();
  }

  await report('signaling', results, {
    connected_relays: { text: '≥ 10000', met: (v) => v >= 10_000 },
    matches_per_s: { text: '≥ 2000 (p99 ≤ 50 ms)', met: (v) => v >= 2_000 },
    match_latency_p99_ms: { text: '≤ 50', met: (v) => v <= 50 },
    rss_per_peer_kib: { text: '≤ 32', met: (v) => v <= 32 },
    redis_two_instances_matches_per_s: {
      text: '> matches_per_s',
      met: (v) => v > (one.best?.achieved ?? Infinity),
    },
  });
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
