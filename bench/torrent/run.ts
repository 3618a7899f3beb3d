/**
 * npm run bench:torrent — a torrent from the local swarm through the two-hop path (the user's isolated
 * WebTorrent, a Node client engine with `needs: 'torrent'`, a volunteer relay, an exit with its torrent
 * service), beside the same path's plain `tcp` download and a Node WebTorrent in the swarm directly; magnet to
 * first byte, cold and warm exit; the exit's CPU and peak memory. Every party runs in its own process. Prints a
 * table; writes bench/results/torrent.json.
 *
 *   env BENCH_TORRENT_MB (default 200), BENCH_TORRENT_RUNS (default 3), BENCH_TORRENT_PIECE_KB (default 256),
 *       BENCH_TORRENT_ARIA2=1 (add the aria2 seeder to the swarm; off by default: one seeder, as in the baseline)
 */
import { cpus } from 'node:os';
import { startSignalingServer } from '../../signaling-server/src/server.js';
import { startSwarm, type LocalSwarm } from '../../test/swarm/swarm.js';
import { startTestSite } from '../../test/http-site.js';
import { median, report, type BenchResult } from '../lib/report.js';
import { processCpuSeconds } from '../lib/process-cpu.js';
import { Child, type Usage } from './rpc.js';
import type { Sent } from './relay-process.js';
import type { DownloadTiming } from './user-process.js';

const MB = 1_000_000;
const SIZE = Math.round(Number(process.env.BENCH_TORRENT_MB ?? 200) * MB);
const RUNS = Math.max(1, Number(process.env.BENCH_TORRENT_RUNS ?? 3));
const PIECE_LENGTH = Number(process.env.BENCH_TORRENT_PIECE_KB ?? 256) * 1024;
const WITH_ARIA2 = process.env.BENCH_TORRENT_ARIA2 === '1';
/** The website of the `tcp` baseline, the exit's own address (its listener and every outgoing socket), and the direct client's. */
const SITE_HOST = '127.0.0.3';
const EXIT_ADDRESS = '127.0.0.25';
const DIRECT_ADDRESS = '127.0.0.26';
/** No single step of a run may take longer: a stalled download fails the benchmark instead of hanging it. */
const STEP_TIMEOUT_MS = 15 * 60_000;

type Step = 'tcp' | 'cold' | 'warm';
const PARTIES = ['exit', 'relay', 'user', 'source'] as const;
type Party = (typeof PARTIES)[number];

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
const mbps = (timing: DownloadTiming) => (timing.bytes * 8) / (timing.totalMs / 1000) / 1e6;
const per100MB = (seconds: number, bytes: number) => seconds / (bytes / (100 * MB));
const progress = (text: string) => process.stderr.write(`${text}\n`);

function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

type RunFigures = {
  tcp: DownloadTiming;
  cold: DownloadTiming;
  warm: DownloadTiming;
  direct: DownloadTiming;
  /** CPU seconds of each process over each download (`source`: this process, with the seeder and the website). */
  cpu: Record<Step, Record<Party, number>>;
  /** Mean size of the DataChannel messages (cells) the relay sent during each download, in bytes. */
  relayBytesPerMessage: Record<Step, number>;
  /** The exit's peak resident memory (MiB) during each download. */
  exitPeakRss: Record<Step, number>;
  /** Every address that contacted the swarm during the tunnelled downloads (it should be the exit's alone). */
  swarmSaw: string[];
};

/** One run: a fresh signaling server, exit (it has never seen the torrent), relay and user, then a direct download. */
async function oneRun(
  run: number,
  swarm: LocalSwarm,
  hashes: Record<string, string>,
  sitePort: number,
): Promise<RunFigures> {
  const magnet = swarm.magnet();
  const allowDestinations = [...swarm.allowDestinations, `${SITE_HOST}/32`];
  const contactsBefore = (await swarm.contacts()).length;
  const signaling = await startSignalingServer({ port: 0 });
  const exit = new Child('exit-process.ts');
  const relay = new Child('relay-process.ts');
  const user = new Child('user-process.ts');
  try {
    await exit.call<string>('start', signaling.url, allowDestinations, EXIT_ADDRESS);
    await relay.call('start', signaling.url);
    const state = await user.call<{ status: string; path?: { hop?: { role?: string } } }>(
      'start',
      signaling.url,
    );
    if (state.status !== 'protected' || state.path?.hop?.role !== 'relay')
      throw new Error(`no two-hop path: ${JSON.stringify(state)}`);
    // Read once at each step's boundaries: a child's peak memory is the peak since its previous reading.
    const usageNow = async (): Promise<Record<Party, Usage> & { relaySent: Sent }> => {
      const [e, r, u] = await Promise.all([exit, relay, user].map((child) => child.call<Usage>('usage')));
      return {
        exit: e!,
        relay: r!,
        user: u!,
        source: { cpuSeconds: processCpuSeconds(), peakRssMiB: 0 },
        relaySent: await relay.call<Sent>('sent'),
      };
    };
    const perMessage = (from: { relaySent: Sent }, to: { relaySent: Sent }) =>
      (to.relaySent.bytes - from.relaySent.bytes) / (to.relaySent.messages - from.relaySent.messages);
    const spent = (from: Record<Party, Usage>, to: Record<Party, Usage>) =>
      Object.fromEntries(
        PARTIES.map((party) => [party, to[party].cpuSeconds - from[party].cpuSeconds]),
      ) as Record<Party, number>;

    const parties = { exit, relay, user };
    /**
     * One download between two readings of every party (the first reading starts each party's peak memory
     * afresh); with BENCH_TORRENT_CPU_PROF, each party's CPU profile of exactly this download.
     */
    const measured = async <T>(step: Step, download: () => Promise<T>) => {
      await Promise.all(Object.values(parties).map((child) => child.call('profileStart')));
      const from = await usageNow();
      const result = await within(download(), `${step} download`);
      const to = await usageNow();
      await Promise.all(
        Object.entries(parties).map(([name, child]) =>
          child.call('profileStop', `run${run}-${step}-${name}`),
        ),
      );
      return { result, from, to };
    };

    // The torrent first, on an exit that has never seen it, so that its memory peak is its own: RSS seldom
    // shrinks, and the tcp download would otherwise set the floor.
    const cold = await measured('cold', () => user.call<DownloadTiming>('torrent', magnet, hashes));
    progress(
      `run ${run}: torrent, cold exit ${mbps(cold.result).toFixed(0)} Mbit/s, first byte ${cold.result.firstByteMs.toFixed(0)} ms`,
    );
    const warm = await measured('warm', () => user.call<DownloadTiming>('torrent', magnet, hashes));
    progress(
      `run ${run}: torrent, warm exit ${mbps(warm.result).toFixed(0)} Mbit/s, first byte ${warm.result.firstByteMs.toFixed(0)} ms`,
    );
    const tcp = await measured('tcp', () =>
      user.call<DownloadTiming>('tcpGet', SITE_HOST, sitePort, '/file.bin'),
    );
    if (tcp.result.bytes < SIZE) throw new Error(`tcp download short: ${tcp.result.bytes} bytes`);
    progress(`run ${run}: tcp through two hops ${mbps(tcp.result).toFixed(0)} Mbit/s`);
    await Promise.all([user.stop(), relay.stop(), exit.stop()]);
    const swarmSaw = [...new Set((await swarm.contacts()).slice(contactsBefore).map((c) => c.from))].sort();
    if (swarmSaw.some((address) => address !== EXIT_ADDRESS))
      throw new Error(`the swarm saw more than the exit: ${swarmSaw.join(', ')}`);

    const directUser = new Child('user-process.ts');
    const direct = await within(
      directUser.call<DownloadTiming>('direct', magnet, DIRECT_ADDRESS),
      'direct download',
    );
    await directUser.stop();
    progress(`run ${run}: swarm direct ${mbps(direct).toFixed(0)} Mbit/s`);
    return {
      tcp: tcp.result,
      cold: cold.result,
      warm: warm.result,
      direct,
      cpu: { cold: spent(cold.from, cold.to), warm: spent(warm.from, warm.to), tcp: spent(tcp.from, tcp.to) },
      relayBytesPerMessage: {
        cold: perMessage(cold.from, cold.to),
        warm: perMessage(warm.from, warm.to),
        tcp: perMessage(tcp.from, tcp.to),
      },
      exitPeakRss: {
        cold: cold.to.exit.peakRssMiB,
        warm: warm.to.exit.peakRssMiB,
        tcp: tcp.to.exit.peakRssMiB,
      },
      swarmSaw,
    };
  } finally {
    await Promise.all([user.stop(), relay.stop(), exit.stop()]);
    await signaling.close();
  }
}

async function main(): Promise<void> {
  progress(
    `bench:torrent — ${SIZE / MB} MB torrent (${PIECE_LENGTH / 1024} KiB pieces${WITH_ARIA2 ? ', aria2 too' : ''}), ` +
      `${RUNS} runs, ${cpus().length} CPUs, Node ${process.version}`,
  );
  const swarm = await startSwarm({
    files: [{ path: 'video/movie.bin', length: SIZE }],
    pieceLength: PIECE_LENGTH,
    aria2: WITH_ARIA2,
  });
  const site = await startTestSite({ host: SITE_HOST, fileSize: SIZE });
  const hashes = Object.fromEntries(swarm.content.files.map((file) => [file.path, file.sha256]));
  const runs: RunFigures[] = [];
  try {
    for (let run = 1; run <= RUNS; run++) {
      runs.push(await oneRun(run, swarm, hashes, site.port));
    }
    progress(`the swarm saw, during the tunnelled downloads: ${runs[0]!.swarmSaw.join(', ')}`);
  } finally {
    await site.close();
    await swarm.stop();
  }

  const med = (pick: (run: RunFigures) => number) => median(runs.map(pick));
  const tunnel = med((r) => mbps(r.tcp));
  const torrent = med((r) => mbps(r.cold));
  const direct = med((r) => mbps(r.direct));
  const cpu = (party: Party, download: Step) =>
    med((r) => per100MB(r.cpu[download][party], r[download].bytes));
  const exitTcpCpu = cpu('exit', 'tcp');
  const exitColdCpu = cpu('exit', 'cold');
  const exitWarmCpu = cpu('exit', 'warm');
  const rss = (step: Step) => med((r) => r.exitPeakRss[step]);
  const hundreds = SIZE / (100 * MB);
  const tunnelRef = { metric: 'tunnel_two_hop_mbps', value: round(tunnel, 1) };
  const directFirstByte = med((r) => r.direct.firstByteMs);
  const results: BenchResult[] = [
    {
      metric: 'torrent_two_hop_mbps',
      value: round(torrent, 1),
      unit: 'Mbit/s',
      runs: RUNS,
      baseline: tunnelRef,
      ratio: round(torrent / tunnel, 3),
    },
    { metric: 'tunnel_two_hop_mbps', value: round(tunnel, 1), unit: 'Mbit/s', runs: RUNS },
    { metric: 'swarm_direct_mbps', value: round(direct, 1), unit: 'Mbit/s', runs: RUNS },
    {
      metric: 'torrent_vs_tunnel_ratio',
      value: round(torrent / tunnel, 3),
      unit: 'ratio',
      runs: RUNS,
      baseline: tunnelRef,
    },
    {
      metric: 'torrent_warm_two_hop_mbps',
      value: round(
        med((r) => mbps(r.warm)),
        1,
      ),
      unit: 'Mbit/s',
      runs: RUNS,
      baseline: tunnelRef,
      ratio: round(med((r) => mbps(r.warm)) / tunnel, 3),
    },
    {
      metric: 'torrent_vs_swarm_direct_ratio',
      value: round(torrent / direct, 3),
      unit: 'ratio',
      runs: RUNS,
      baseline: { metric: 'swarm_direct_mbps', value: round(direct, 1) },
    },
    {
      metric: 'magnet_to_first_byte_p50_ms',
      value: round(
        med((r) => r.cold.firstByteMs),
        0,
      ),
      unit: 'ms',
      runs: RUNS,
      baseline: { metric: 'swarm_direct_first_byte_p50_ms', value: round(directFirstByte, 0) },
    },
    {
      metric: 'magnet_to_first_byte_warm_p50_ms',
      value: round(
        med((r) => r.warm.firstByteMs),
        0,
      ),
      unit: 'ms',
      runs: RUNS,
      baseline: { metric: 'swarm_direct_first_byte_p50_ms', value: round(directFirstByte, 0) },
    },
    {
      metric: 'exit_cpu_s_per_100mb',
      value: round(exitColdCpu, 3),
      unit: 's',
      runs: RUNS,
      baseline: { metric: 'exit_tcp_cpu_s_per_100mb', value: round(exitTcpCpu, 3) },
      ratio: round(exitColdCpu / exitTcpCpu, 3),
    },
    {
      metric: 'exit_warm_cpu_s_per_100mb',
      value: round(exitWarmCpu, 3),
      unit: 's',
      runs: RUNS,
      baseline: { metric: 'exit_tcp_cpu_s_per_100mb', value: round(exitTcpCpu, 3) },
      ratio: round(exitWarmCpu / exitTcpCpu, 3),
    },
    // Where the rest of the CPU goes: each other process over each download, beside its share of the tcp one.
    ...(['relay', 'user', 'source'] as const).flatMap((party) =>
      (['cold', 'warm'] as const).map((download) => ({
        metric: `${party}_${download === 'cold' ? '' : 'warm_'}cpu_s_per_100mb`,
        value: round(cpu(party, download), 3),
        unit: 's',
        runs: RUNS,
        baseline: { metric: `${party}_tcp_cpu_s_per_100mb`, value: round(cpu(party, 'tcp'), 3) },
      })),
    ),
    ...(['cold', 'warm'] as const).map((download) => ({
      metric: `relay_${download === 'cold' ? '' : 'warm_'}bytes_per_message`,
      value: Math.round(med((r) => r.relayBytesPerMessage[download])),
      unit: 'B',
      runs: RUNS,
      baseline: {
        metric: 'relay_tcp_bytes_per_message',
        value: Math.round(med((r) => r.relayBytesPerMessage.tcp)),
      },
    })),
    {
      metric: 'exit_peak_rss_mib',
      value: round(rss('cold'), 1),
      unit: 'MiB',
      runs: RUNS,
      baseline: { metric: 'exit_tcp_peak_rss_mib', value: round(rss('tcp'), 1) },
      ratio: round(rss('cold') / rss('tcp'), 3),
    },
    {
      metric: 'exit_warm_peak_rss_mib',
      value: round(rss('warm'), 1),
      unit: 'MiB',
      runs: RUNS,
      baseline: { metric: 'exit_tcp_peak_rss_mib', value: round(rss('tcp'), 1) },
    },
    {
      metric: 'exit_peak_rss_mib_per_100mb',
      value: round(rss('cold') / hundreds, 1),
      unit: 'MiB',
      runs: RUNS,
      baseline: { metric: 'exit_tcp_peak_rss_mib_per_100mb', value: round(rss('tcp') / hundreds, 1) },
    },
  ];
  await report('torrent', results, {
    torrent_vs_tunnel_ratio: { text: '≥ 0.8', met: (v) => v >= 0.8 },
    magnet_to_first_byte_p50_ms: { text: '≤ 1500', met: (v) => v <= 1500 },
  });
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
