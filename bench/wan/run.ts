/**
 * npm run bench:wan — the tunnel on emulated wide-area links (bench/wan/README.md): client, relay, exit, website
 * and signaling server each in its own network namespace, joined by the link emulator. For each RTT and loss
 * rate: one- and eight-stream downloads through the direct and the two-hop path beside a raw DataChannel and
 * plain TCP under the same conditions, time to first byte, a 50-resource page load, and setup of a fresh path.
 * Prints a table (and each download's Mbit/s per second); writes bench/results/wan.json.
 *
 *   --seconds N     length of each download (default 30)
 *   --quick         5 s downloads, fewer latency samples: for development
 *   --rtt 20,50     RTTs in ms (default 20,50,150)
 *   --loss 0,1      loss in % (default 0,1)
 *   --jitter N      ± N ms on each bottleneck link's delay, each way (default 0; the emulator never reorders)
 *   --raw-pace N    the raw baseline's sender paced to N Mbit/s (an experiment; 0: unpaced)
 *   --associations N  also one stream over each of N direct tunnels at once (an experiment; default 1: not run)
 *   --lanes N       each tunnel link (not the raw baseline's) over N PeerConnections (StripedLink; default the
 *                   product's, DEFAULT_LINK_LANES)
 *   --lane-receipts on|off  per-lane receipts on striped links (default on, as the product's links)
 *   --nudges on|off  striped links nudge lanes with long round trips (default on, as the product's: StripedLink)
 *   --lane-resends on|off  striped links resend a stalled lane's messages on another lane (default on, as the
 *                   product's: StripedLink)
 *   --pacing on|off  striped links on long paths pace what they send to 1.5 × the rate receipted (default on, as
 *                   the product's: StripedLink, pacer.ts)
 *   --early-data on|off  tunnel requests written with their stream's OPEN (default on, as the browser's through the
 *                   companion: ProtectEngine.openEarly); off waits for the exit's OPEN_OK first
 *   BENCH_STICKY_LANE_KIB=N  (environment; an experiment) with receipts, keep sending on one lane until it has
 *                   N KiB in flight (default the product's STICKY_LANE_BYTES)
 *   --trace         during each tunnel download, sample every 100 ms where data waits (the exit's and
 *                   the relay's DataChannel buffers, the relay's queue, the emulator's queues and drops, each
 *                   party's event-loop delay, what the client's channel received and its streams not yet) and
 *                   how the client's receive windows see the path; print it; and the phases of each setup
 *   --setup-only    measure only the setup of a fresh path (~30 s a condition, for work on setup)
 */
import { parseArgs } from 'node:util';
import { median, report, type BenchResult, type Goal } from '../lib/report.js';
import { symmetric, WanNetwork, type DirectionSpec, type LinkSpec, type LinkStats } from './network.js';
import { connect, Party } from './party.js';
import type { Download, SetupPhases, Target, Via } from './client-process.js';
import { SITE_PORT } from './site-process.js';
import type { StripedLinkFigures } from './serve.js';
import type { ReceiveWindowState } from '@underpass/shared/tunnel';
import { DEFAULT_LINK_LANES, MAX_LANES } from '@underpass/shared/links';

const LINK_MBPS = 100;
const ROLES = ['client', 'relay', 'exit', 'site', 'signaling'] as const;
const RESOURCES = 50;
/** A browser's connections per host. */
const PARALLEL = 6;

const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string' },
    quick: { type: 'boolean', default: false },
    rtt: { type: 'string', default: '20,50,150' },
    loss: { type: 'string', default: '0,1' },
    jitter: { type: 'string', default: '0' },
    trace: { type: 'boolean', default: false },
    'raw-pace': { type: 'string', default: '0' },
    associations: { type: 'string', default: '1' },
    lanes: { type: 'string', default: String(DEFAULT_LINK_LANES) },
    'lane-receipts': { type: 'string', default: 'on' },
    'early-data': { type: 'string', default: 'on' },
    nudges: { type: 'string', default: 'on' },
    'lane-resends': { type: 'string', default: 'on' },
    pacing: { type: 'string', default: 'on' },
    'setup-only': { type: 'boolean', default: false },
  },
});
/** A switch's value, on or off; anything else ends the run. */
function onOff(name: 'lane-receipts' | 'early-data' | 'nudges' | 'lane-resends' | 'pacing'): 'on' | 'off' {
  const value = flags[name];
  if (value !== 'on' && value !== 'off') throw new Error(`--${name} on|off`);
  return value;
}
/** --lane-receipts off: striped links without per-lane receipts (the product names them: PeerConnector). */
process.env.BENCH_LANE_RECEIPTS = onOff('lane-receipts');
/** --early-data off: the client waits for OPEN_OK before it writes a request (the parties inherit it). */
process.env.BENCH_EARLY_DATA = onOff('early-data');
/** --nudges off: striped links never nudge their lanes (the parties inherit it). */
process.env.BENCH_NUDGES = onOff('nudges');
/** --lane-resends off: striped links never resend a stalled lane's messages on another (the parties inherit it). */
process.env.BENCH_LANE_RESENDS = onOff('lane-resends');
/** --pacing off: striped links on long paths hand their lanes messages as fast as they come (the parties inherit it). */
process.env.BENCH_PACING = onOff('pacing');
/** --raw-pace: the raw baseline's sender held to this many Mbit/s (0: as fast as the channel takes). */
const RAW_PACE_MBPS = Number(flags['raw-pace']);

/** --associations N: also one stream over each of N direct tunnels at once, each its own PeerConnection. */
const ASSOCIATIONS = Math.max(1, Math.round(Number(flags.associations)));

/** --lanes N: each tunnel link over N PeerConnections, striped (shared/src/links/striped-link.ts). */
const LANES = Math.max(1, Math.min(MAX_LANES, Math.round(Number(flags.lanes))));

const numbers = (text: string, what: string) =>
  text.split(',').map((part) => {
    const value = Number(part);
    if (!Number.isFinite(value) || value < 0) throw new Error(`bad ${what}: ${part}`);
    return value;
  });
const SECONDS = Math.max(2, Math.round(Number(flags.seconds ?? (flags.quick ? 5 : 30))));
const RTTS = numbers(flags.rtt, '--rtt');
const LOSSES = numbers(flags.loss, '--loss');
const JITTER_MS = numbers(flags.jitter, '--jitter')[0]!;
const TTFB_RUNS = flags.quick ? 5 : 15;
const PAGE_RUNS = flags.quick ? 1 : 3;
const SETUP_RUNS = flags.quick ? 2 : 5;

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
const progress = (text: string) => process.stderr.write(`${text}\n`);
const mbps = (bytes: number, seconds: number) => (bytes * 8) / seconds / 1e6;

type Condition = { rttMs: number; lossPercent: number; queueMs: number };
const suffix = (c: Condition) => `rtt${c.rttMs}_loss${c.lossPercent}`;

/**
 * The links of one condition. The direct path (client↔exit), the raw baseline (the same two namespaces) and
 * plain TCP (client↔website) each cross one bottleneck with the condition's RTT and loss. The two-hop path
 * crosses two, each with half the RTT and the loss split so that the whole path loses the same share — the
 * same path RTT and loss end to end. The exit reaches the website over 1 ms at 1 Gbit/s (a server's uplink);
 * everyone reaches the signaling server over 10 ms RTT. The relay has no link to the website at all.
 */
function linksFor(c: Condition): LinkSpec[] {
  const loss = c.lossPercent / 100;
  const hopLoss = 1 - Math.sqrt(1 - loss);
  const bottleneck = (oneWayMs: number, p: number): DirectionSpec => ({
    delayMs: oneWayMs,
    jitterMs: Math.min(JITTER_MS, oneWayMs),
    rateMbps: LINK_MBPS,
    queueMs: c.queueMs,
    loss: p,
  });
  const signaling: DirectionSpec = { delayMs: 5, rateMbps: 100, queueMs: 50 };
  return [
    symmetric('client', 'exit', bottleneck(c.rttMs / 2, loss)),
    symmetric('client', 'site', bottleneck(c.rttMs / 2, loss)),
    symmetric('client', 'relay', bottleneck(c.rttMs / 4, hopLoss)),
    symmetric('relay', 'exit', bottleneck(c.rttMs / 4, hopLoss)),
    symmetric('exit', 'site', { delayMs: 0.5, rateMbps: 1000, queueMs: 50 }),
    symmetric('client', 'signaling', signaling),
    symmetric('relay', 'signaling', signaling),
    symmetric('exit', 'signaling', signaling),
  ];
}

type Parties = Record<'client' | 'relay' | 'exit' | 'site' | 'signaling', Party>;

/** What the emulator counted during `work`, summed over the directions towards the client. */
/** The link a download crosses first, from its sender: where its bytes on the wire are counted. */
type FirstHop = 'exit>client' | 'exit>relay' | 'site>client';

async function withLinkCounters<T>(
  network: WanNetwork,
  firstHop: FirstHop,
  work: () => Promise<T>,
): Promise<{ value: T; queueDrops: number; lost: number; firstHopBytes: number; emulatorCpu: number }> {
  const sum = (stats: LinkStats) => {
    let queueDrops = 0;
    let lost = 0;
    let firstHopBytes = 0;
    for (const [key, s] of Object.entries(stats.directions)) {
      if (key === 'exit>client' || key === 'relay>client' || key === 'exit>relay' || key === 'site>client') {
        queueDrops += s.queueDrops;
        lost += s.lost;
      }
      // What the download put on the wire, retransmissions included. Only its own hop: another may still be
      // draining what an earlier download's sender had queued.
      if (key === firstHop) firstHopBytes += s.bytes;
    }
    return { queueDrops, lost, firstHopBytes };
  };
  const before = sum(await network.stats());
  const cpuBefore = await network.emulatorCpuSeconds();
  const start = performance.now();
  const value = await work();
  const emulatorCpu = (await network.emulatorCpuSeconds()) - cpuBefore;
  const seconds = (performance.now() - start) / 1000;
  const after = sum(await network.stats());
  return {
    value,
    queueDrops: after.queueDrops - before.queueDrops,
    lost: after.lost - before.lost,
    firstHopBytes: after.firstHopBytes - before.firstHopBytes,
    emulatorCpu: emulatorCpu / seconds,
  };
}

type Measured = {
  mbps: number;
  perSecondMbps: number[];
  queueDrops: number;
  lost: number;
  /**
   * Bytes on the wire of the download's first hop (IP packets, retransmissions included) per byte it delivered:
   * ~1.1 is headers alone; more is data sent twice.
   */
  wirePerByte: number;
  /** Share of one core the emulator used meanwhile. */
  emulatorCpu: number;
};
const fromDownload = (d: {
  value: Download;
  queueDrops: number;
  lost: number;
  firstHopBytes: number;
  emulatorCpu: number;
}): Measured => ({
  mbps: mbps(
    d.value.perSecond.reduce((a, b) => a + b, 0),
    d.value.perSecond.length,
  ),
  perSecondMbps: d.value.perSecond.map((bytes) => round(mbps(bytes, 1))),
  queueDrops: d.queueDrops,
  lost: d.lost,
  wirePerByte:
    d.firstHopBytes /
    Math.max(
      1,
      d.value.perSecond.reduce((a, b) => a + b, 0),
    ),
  emulatorCpu: d.emulatorCpu,
});

/**
 * Runs `work` while sampling `sample` every 100 ms; prints, per sampled quantity, its mean and maximum in each
 * second (kB for bytes, ms for queues): where the data of a download waited.
 */
async function traced<T>(work: () => Promise<T>, sample: () => Promise<Record<string, number>>): Promise<T> {
  const samples: { atMs: number; values: Record<string, number> }[] = [];
  const start = performance.now();
  let done = false;
  const sampler = (async () => {
    while (!done) {
      const values = await sample().catch(() => undefined);
      if (values) samples.push({ atMs: performance.now() - start, values });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  try {
    return await work();
  } finally {
    done = true;
    await sampler;
    const keys = [...new Set(samples.flatMap((s) => Object.keys(s.values)))].sort();
    for (const key of keys) {
      const perSecond: string[] = [];
      for (let second = 0; second * 1000 < (samples.at(-1)?.atMs ?? 0); second++) {
        const values = samples
          .filter((s) => Math.floor(s.atMs / 1000) === second && key in s.values)
          .map((s) => s.values[key]!);
        if (values.length === 0) continue;
        const mean = values.reduce((a, b) => a + b, 0) / values.length;
        perSecond.push(`${mean.toFixed(0)}/${Math.max(...values).toFixed(0)}`);
      }
      progress(`    ${key.padEnd(30)} ${perSecond.join(' ')}`);
    }
  }
}

const BARS = '▁▂▃▄▅▆▇█';
const sparkline = (values: number[]) =>
  values.map((v) => BARS[Math.min(7, Math.max(0, Math.round((v / LINK_MBPS) * 7)))]).join('');

/**
 * Setup of a fresh two-hop path through the signaling server (the first run warms the relay→exit link): each
 * run's time to the first byte, and its floor — what the same run spent before the tunnel could send anything (the
 * broker's answer and the WebRTC link to the relay) plus the one path round trip that any request's answer takes.
 * No handshake or stream protocol on a link built on demand could be faster than its floor.
 */
async function measureSetup(
  client: Party,
  signalingUrl: string,
  site: Target,
  rttMs: number,
): Promise<{ setups: number[]; floors: number[] }> {
  const setupRuns: SetupPhases[] = [];
  for (let run = 0; run <= SETUP_RUNS; run++) {
    const phases = await client.call<SetupPhases>('setup', signalingUrl, site);
    if (run > 0) setupRuns.push(phases);
  }
  const setups = setupRuns.map((phases) => phases.firstByte);
  const floors = setupRuns.map((phases) => phases.link + rttMs);
  progress(
    `  setup ${setups.map((v) => v.toFixed(0)).join(', ')} ms; floor (broker + WebRTC link + one path RTT) ` +
      `${floors.map((v) => v.toFixed(0)).join(', ')} ms`,
  );
  if (flags.trace) {
    // Each phase ends at its mark and starts at the one before (the first at the path request, 0).
    const marks: [name: string, mark: keyof SetupPhases][] = [
      ['broker', 'path'],
      ['ICE + DTLS to the relay', 'secured'],
      ['SCTP + DataChannel', 'link'],
      ['handshake + first PING', 'protected'],
      ['open + GET', 'firstByte'],
    ];
    const phases = marks.map(([name, mark], index) => {
      const start = marks[index - 1]?.[1];
      const length = median(setupRuns.map((p) => p[mark] - (start === undefined ? 0 : p[start])));
      return `${name} ${length.toFixed(0)}`;
    });
    progress(`  setup phases, medians in ms: ${phases.join(', ')}`);
  }
  return { setups, floors };
}

const setupRows = (
  tag: string,
  { setups, floors }: { setups: number[]; floors: number[] },
): BenchResult[] => [
  {
    metric: `setup_p50_ms_${tag}`,
    value: round(median(setups)),
    unit: 'ms',
    runs: setups.length,
    baseline: { metric: `setup_floor_p50_ms_${tag}`, value: round(median(floors)) },
  },
  { metric: `setup_floor_p50_ms_${tag}`, value: round(median(floors)), unit: 'ms', runs: floors.length },
];

async function measureCondition(
  network: WanNetwork,
  parties: Parties,
  c: Condition,
  exitKey: number[],
  signalingUrl: string,
): Promise<BenchResult[]> {
  const { client, relay, exit } = parties;
  await network.setLinks(linksFor(c));
  const tag = suffix(c);
  const site: Target = { host: network.address('site'), port: SITE_PORT };
  const rows: BenchResult[] = [];
  if (flags['setup-only']) return setupRows(tag, await measureSetup(client, signalingUrl, site, c.rttMs));
  const log = (name: string, m: Measured) =>
    progress(
      `  ${name.padEnd(22)} ${m.mbps.toFixed(1).padStart(6)} Mbit/s  ${sparkline(m.perSecondMbps)}  ` +
        `(queue drops ${m.queueDrops}, lost ${m.lost}, wire ${m.wirePerByte.toFixed(2)} B/B, emulator ${(m.emulatorCpu * 100).toFixed(0)} % CPU)`,
    );

  // 1. The raw DataChannel baseline: the exit's namespace sends, the client's receives.
  const rawName = `raw-${tag}`;
  const rawSetupMs = await connect(
    { party: client, name: rawName, open: () => client.call('openRawLink', rawName) },
    { party: exit, name: rawName, open: () => exit.call('openRawLink', rawName, RAW_PACE_MBPS) },
  );
  const receiveRaw = async () => ({
    perSecond: await client.call<number[]>('receiveRaw', rawName, SECONDS),
    firstByteMs: 0,
  });
  const rawSample = async (): Promise<Record<string, number>> => {
    const [exitBuffered, stats] = await Promise.all([
      exit.call<Record<string, number>>('buffered'),
      network.stats(),
    ]);
    return {
      'raw: exit DC kB': (exitBuffered[rawName] ?? 0) / 1000,
      'link exit>client queue ms': stats.directions['exit>client']?.queuedMs ?? 0,
      'link exit>client drops so far': stats.directions['exit>client']?.queueDrops ?? 0,
    };
  };
  const raw = fromDownload(
    await withLinkCounters(network, 'exit>client', () =>
      flags.trace ? traced(receiveRaw, rawSample) : receiveRaw(),
    ),
  );
  await exit.call('stopRaw', rawName);
  await client.call('closeRawLink', rawName);
  log('raw DataChannel', raw);

  // 2. The direct path and the two-hop path, on fresh links.
  const direct = `direct-${tag}`;
  const directSetupMs = await connect(
    { party: client, name: direct, open: () => client.call('openTunnel', direct, exitKey, LANES) },
    { party: exit, name: direct, open: () => exit.call('openExitLink', direct, false, LANES) },
  );
  const twoHop = `two-hop-${tag}`;
  await connect(
    { party: relay, name: `${twoHop}-exit`, open: () => relay.call('openExitSide', twoHop, LANES) },
    {
      party: exit,
      name: `${twoHop}-exit`,
      open: () => exit.call('openExitLink', `${twoHop}-exit`, false, LANES),
    },
  );
  const twoHopSetupMs = await connect(
    { party: client, name: twoHop, open: () => client.call('openTunnel', twoHop, exitKey, LANES) },
    { party: relay, name: `${twoHop}-client`, open: () => relay.call('openClientSide', twoHop, LANES) },
  );
  progress(
    `  links up: raw ${rawSetupMs.toFixed(0)} ms, direct tunnel ${directSetupMs.toFixed(0)} ms, ` +
      `two-hop tunnel (relay→exit already up) ${twoHopSetupMs.toFixed(0)} ms`,
  );

  const paths: [string, Via, FirstHop][] = [
    ['tcp', { tcp: true }, 'site>client'],
    ['direct', { tunnel: direct }, 'exit>client'],
    ['two_hop', { tunnel: twoHop }, 'exit>relay'],
  ];
  /** Where the data waits (mean/max per second): kB in DataChannel buffers and the relay's queue, ms in links'. */
  const sample = async (via: string): Promise<Record<string, number>> => {
    type InFlight = Record<string, StripedLinkFigures>;
    const [
      exitBuffered,
      relayBuffered,
      exitInFlight,
      relayInFlight,
      relayQueued,
      stats,
      window,
      ...loopDelays
    ] = await Promise.all([
      exit.call<Record<string, number>>('buffered'),
      relay.call<Record<string, number>>('buffered'),
      exit.call<InFlight>('inFlight'),
      relay.call<InFlight>('inFlight'),
      relay.call<number>('queued', twoHop),
      network.stats(),
      client.call<ReceiveWindowState | undefined>('windowState', via),
      ...[client, relay, exit].map((party) => party.call<number>('loopDelay')),
    ]);
    // Read one after the other, libwebrtc's count first: what it has received and JavaScript not yet.
    const inChannel = await client.call<number>('channelBytesReceived', via);
    const delivered = await client.call<number>('delivered', via);
    const held = await client.call<number>('heldForOrder', via);
    const values: Record<string, number> = {
      'client: received, not yet in JS kB': Math.max(0, inChannel - delivered) / 1000,
      'client: of which held for order kB': held / 1000,
      'event loop late ms: client': loopDelays[0]!,
      'event loop late ms: relay': loopDelays[1]!,
      'event loop late ms: exit': loopDelays[2]!,
      'client: windows grown kB': (window?.grownBytes ?? 0) / 1000,
      'client: windows open kB': (window?.openBytes ?? 0) / 1000,
      'client: credit RTT latest ms': window?.latestRoundTripMs ?? 0,
      'client: credit RTT shortest ms': window?.roundTripMs ?? 0,
      'client: queue-free (1) or not': window?.queueFree ? 1 : 0,
      'direct: exit DC kB': (exitBuffered[direct] ?? 0) / 1000,
      'two-hop: exit DC kB': (exitBuffered[`${twoHop}-exit`] ?? 0) / 1000,
      'two-hop: relay DC to client kB': (relayBuffered[`${twoHop}-client`] ?? 0) / 1000,
      'two-hop: relay queue kB': relayQueued / 1000,
    };
    // Sent and not yet receipted (striped links with receipts): on all lanes, and on the fullest one.
    const inFlight: [string, StripedLinkFigures | undefined][] = [
      ['direct: exit', exitInFlight[direct]],
      ['two-hop: exit', exitInFlight[`${twoHop}-exit`]],
      ['two-hop: relay', relayInFlight[`${twoHop}-client`]],
    ];
    for (const [who, figures] of inFlight) {
      if (!figures) continue;
      values[`${who} in flight kB`] = figures.all / 1000;
      values[`${who} in flight, fullest lane kB`] = figures.most / 1000;
      values[`${who} resent messages so far`] = figures.resent;
      values[`${who} waiting for the pacer kB`] = figures.paced / 1000;
    }
    for (const key of ['exit>client', 'exit>relay', 'relay>client']) {
      values[`link ${key} queue ms`] = stats.directions[key]?.queuedMs ?? 0;
      values[`link ${key} drops so far`] = stats.directions[key]?.queueDrops ?? 0;
    }
    return values;
  };
  const downloads: Record<string, Measured> = {};
  for (const streams of [1, 8]) {
    for (const [name, via, firstHop] of paths) {
      const run = () => client.call<Download>('download', via, site, streams, SECONDS);
      // A download whose path died (a link that stalled past its keepalive's silence limit) counts as 0 with
      // the reason printed, rather than ending the whole run.
      const measured = await withLinkCounters(network, firstHop, () =>
        flags.trace && 'tunnel' in via ? traced(run, () => sample(via.tunnel)) : run(),
      ).then(fromDownload, (error: unknown): Measured => {
        progress(`  ${streams} × ${name} failed: ${String(error).split('\n')[0]}`);
        return { mbps: 0, perSecondMbps: [], queueDrops: 0, lost: 0, wirePerByte: 0, emulatorCpu: 0 };
      });
      downloads[`${streams}_${name}`] = measured;
      log(`${streams === 1 ? 'one' : 'eight'} stream ${name}`, measured);
    }
  }

  // An experiment (--associations N): does a second SCTP association add what a second stream on one does not?
  if (ASSOCIATIONS > 1) {
    const tunnels: Via[] = [{ tunnel: direct }];
    for (let i = 1; i < ASSOCIATIONS; i++) {
      const name = `${direct}-${i}`;
      await connect(
        { party: client, name, open: () => client.call('openTunnel', name, exitKey) },
        { party: exit, name, open: () => exit.call('openExitLink', name, false) },
      );
      tunnels.push({ tunnel: name });
    }
    const measured = fromDownload(
      await withLinkCounters(network, 'exit>client', () =>
        client.call<Download>('download', tunnels, site, ASSOCIATIONS, SECONDS),
      ),
    );
    downloads[`${ASSOCIATIONS}_direct_associations`] = measured;
    log(`${ASSOCIATIONS} × direct, 1 each`, measured);
  }

  // 3. Time to first byte of a small page over the established two-hop path vs plain TCP; a page load.
  const twoHopVia: Via = { tunnel: twoHop };
  const tunnelTtfb = median(await client.call<number[]>('firstBytes', twoHopVia, site, TTFB_RUNS));
  const tcpTtfb = median(await client.call<number[]>('firstBytes', { tcp: true }, site, TTFB_RUNS));
  const pages = async (via: Via) => {
    const times: number[] = [];
    for (let run = 0; run < PAGE_RUNS; run++)
      times.push(await client.call<number>('pageLoad', via, site, RESOURCES, PARALLEL));
    return median(times);
  };
  const pageTwoHop = await pages(twoHopVia);
  const pageTcp = await pages({ tcp: true });
  progress(
    `  ttfb two-hop ${tunnelTtfb.toFixed(1)} ms vs TCP ${tcpTtfb.toFixed(1)} ms; ` +
      `page load two-hop ${pageTwoHop.toFixed(0)} ms vs TCP ${pageTcp.toFixed(0)} ms`,
  );
  await client.call('closeTunnel', direct);
  await client.call('closeTunnel', twoHop);
  await relay.call('closePath', twoHop);
  await exit.call('closePeer', direct);
  await exit.call('closePeer', `${twoHop}-exit`);

  // 4. Setup of a fresh two-hop path through the signaling server.
  const setup = await measureSetup(client, signalingUrl, site, c.rttMs);

  const rawBaseline = { metric: `raw_mbps_${tag}`, value: round(raw.mbps) };
  const series = (m: Measured) => ({ series: { unit: 'Mbit/s per second', values: m.perSecondMbps } });
  rows.push({ metric: `raw_mbps_${tag}`, value: round(raw.mbps), unit: 'Mbit/s', runs: 1, ...series(raw) });
  for (const [count, word] of [
    [1, 'one'],
    [8, 'eight'],
  ] as const) {
    const tcp = downloads[`${count}_tcp`]!;
    rows.push({
      metric: `${word}_stream_tcp_mbps_${tag}`,
      value: round(tcp.mbps),
      unit: 'Mbit/s',
      runs: 1,
      ...series(tcp),
    });
    for (const path of ['direct', 'two_hop'] as const) {
      const m = downloads[`${count}_${path}`]!;
      rows.push({
        metric: `${word}_stream_${path}_mbps_${tag}`,
        value: round(m.mbps),
        unit: 'Mbit/s',
        runs: 1,
        baseline: rawBaseline,
        ratio: round(m.mbps / raw.mbps, 3),
        ...series(m),
      });
    }
  }
  const one = (path: string) => downloads[`1_${path}`]!.mbps;
  rows.push(
    {
      metric: `one_stream_direct_vs_raw_${tag}`,
      value: round(one('direct') / raw.mbps, 3),
      unit: 'ratio',
      runs: 1,
      baseline: rawBaseline,
    },
    {
      metric: `one_stream_two_hop_vs_raw_${tag}`,
      value: round(one('two_hop') / raw.mbps, 3),
      unit: 'ratio',
      runs: 1,
      baseline: rawBaseline,
    },
    {
      metric: `one_stream_two_hop_vs_link_${tag}`,
      value: round(one('two_hop') / LINK_MBPS, 3),
      unit: 'ratio',
      runs: 1,
      baseline: { metric: 'bottleneck_mbps', value: LINK_MBPS },
    },
    {
      metric: `added_ttfb_p50_ms_${tag}`,
      value: round(tunnelTtfb - tcpTtfb),
      unit: 'ms',
      runs: TTFB_RUNS,
      baseline: { metric: `tcp_ttfb_p50_ms_${tag}`, value: round(tcpTtfb) },
    },
    ...setupRows(tag, setup),
    {
      metric: `page_load_two_hop_ms_${tag}`,
      value: round(pageTwoHop),
      unit: 'ms',
      runs: PAGE_RUNS,
      baseline: { metric: `page_load_tcp_ms_${tag}`, value: round(pageTcp) },
      ratio: round(pageTwoHop / pageTcp, 3),
    },
  );
  return rows;
}

function goalsFor(conditions: Condition[]): Record<string, Goal> {
  const goals: Record<string, Goal> = {};
  for (const c of conditions) {
    const tag = suffix(c);
    goals[`one_stream_direct_vs_raw_${tag}`] = { text: '≥ 0.8', met: (v) => v >= 0.8 };
    goals[`one_stream_two_hop_vs_raw_${tag}`] = { text: '≥ 0.7', met: (v) => v >= 0.7 };
    goals[`added_ttfb_p50_ms_${tag}`] = { text: `≤ ${c.rttMs + 5}`, met: (v) => v <= c.rttMs + 5 };
    goals[`setup_p50_ms_${tag}`] = { text: `≤ ${3 * c.rttMs + 100}`, met: (v) => v <= 3 * c.rttMs + 100 };
  }
  return goals;
}

async function main(): Promise<void> {
  const conditions: Condition[] = RTTS.flatMap((rttMs) =>
    LOSSES.map((lossPercent) => ({ rttMs, lossPercent, queueMs: rttMs >= 150 ? 100 : 50 })),
  );
  progress(
    `bench:wan — ${conditions.length} conditions, ${SECONDS} s per download, ${LINK_MBPS} Mbit/s bottleneck, ` +
      `tunnel links over ${LANES} lane${LANES === 1 ? '' : 's'}, early data ${flags['early-data']}, nudges ${flags.nudges}, resends ${flags['lane-resends']}, pacing ${flags.pacing}` +
      (JITTER_MS ? `, jitter ±${JITTER_MS} ms` : ''),
  );
  const setupStart = performance.now();
  const network = await WanNetwork.create({ roles: ROLES, links: linksFor(conditions[0]!) });
  progress(`network ${network.prefix} up in ${(performance.now() - setupStart).toFixed(0)} ms`);
  const parties = {} as Parties;
  try {
    for (const role of ROLES) parties[role] = new Party(network, role, `./${role}-process.ts`);
    await parties.site.call('start', network.address('site'));
    const signalingUrl = await parties.signaling.call<string>('start', network.address('signaling'));
    const exitKey = await parties.exit.call<number[]>('startEngine', network.address('site'));
    await parties.exit.call('startExitNode', signalingUrl, network.address('site'));
    await parties.relay.call('startVolunteer', signalingUrl);
    const results: BenchResult[] = [];
    for (const c of conditions) {
      progress(`RTT ${c.rttMs} ms, loss ${c.lossPercent} %, queue ${c.queueMs} ms:`);
      results.push(...(await measureCondition(network, parties, c, exitKey, signalingUrl)));
    }
    await report('wan', results, goalsFor(conditions));
  } finally {
    await Promise.all(Object.values(parties).map((party) => party.stop()));
    await network.close();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
