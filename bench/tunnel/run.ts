/**
 * npm run bench:tunnel — the tunnel's throughput and latency against a raw DataChannel and direct TCP, all
 * measured in one run with Node peers on this machine. Prints a table; writes bench/results/tunnel.json.
 *
 *   --profile      also record CPU profiles of the two-hop downloads (parent: client + exit; child: relay)
 *                  and print where the time goes
 *   env BENCH_TUNNEL_MB (default 100), BENCH_TUNNEL_RUNS (default 5)
 */
import { fork } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Session } from 'node:inspector/promises';
import WebSocket from 'ws';
import {
  ExitEngine,
  ExitPolicy,
  MAX_CELL,
  generateStaticKeyPair,
  LINK_HIGH_WATER,
  LINK_LOW_WATER,
  PeerLink,
  ProtectEngine,
  SignalingClient,
  TunnelClient,
  VolunteerEngine,
  type ByteStream,
  type Link,
  type SimplePeerLike,
  type WebSocketConstructorLike,
} from '@underpass/shared';
import { TcpDialer } from '../../exit-node/src/tcp-dialer.js';
import { nodePeerFactory } from '../../exit-node/src/node-peer.js';
import { startExitNode } from '../../exit-node/src/exit-node.js';
import { nodeAead } from '../../exit-node/src/node-aead.js';
import { startSignalingServer } from '../../signaling-server/src/server.js';
import { startTestSite, type TestSite } from '../../test/http-site.js';
import type { ChildMessage, ParentMessage } from './relay-process.js';
import { median, report, type BenchResult } from '../lib/report.js';

const MB = 1_000_000;
const SIZE = Number(process.env.BENCH_TUNNEL_MB ?? 100) * MB;
const RUNS = Math.max(1, Number(process.env.BENCH_TUNNEL_RUNS ?? 5));
const LATENCY_RUNS = 31;
const PROFILE = process.argv.includes('--profile');
const HOST = '127.0.0.3';
const here = fileURLToPath(new URL('.', import.meta.url));

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;
const mbps = (bytes: number, ms: number) => (bytes * 8) / (ms / 1000) / 1e6;
const progress = (text: string) => process.stderr.write(`${text}\n`);

async function peerPair(): Promise<[PeerLink, PeerLink]> {
  const createPeer = nodePeerFactory();
  const a = createPeer({ initiator: true });
  const b = createPeer({ initiator: false });
  a.on('signal', (data) => b.signal(data));
  b.on('signal', (data) => a.signal(data));
  const up = (peer: SimplePeerLike) => new Promise<void>((resolve) => peer.on('connect', () => resolve()));
  await Promise.all([up(a), up(b)]);
  return [new PeerLink(a), new PeerLink(b)];
}

/** The limit: SIZE bytes in messages of the tunnel's largest cell over one DataChannel. */
async function rawDataChannelRun(sender: Link, receiver: Link): Promise<number> {
  // The tunnel's own message size (one full cell), so the baseline is the same DataChannel doing the same work.
  const chunk = new Uint8Array(MAX_CELL);
  let received = 0;
  const done = new Promise<void>((resolve) => {
    const onMessage = (message: Uint8Array) => {
      received += message.length;
      if (received >= SIZE) {
        receiver.off('message', onMessage);
        resolve();
      }
    };
    receiver.on('message', onMessage);
  });
  const start = performance.now();
  let sent = 0;
  while (sent < SIZE) {
    // @roamhq/wrtc updates bufferedAmount only between turns of the event loop: send in bursts, then yield.
    for (let burst = 0; burst < 64 && sent < SIZE && sender.bufferedAmount <= LINK_HIGH_WATER; burst++) {
      const piece = chunk.subarray(0, Math.min(chunk.length, SIZE - sent));
      sender.send(piece);
      sent += piece.length;
    }
    if (sender.bufferedAmount > LINK_HIGH_WATER) {
      while (sender.bufferedAmount > LINK_LOW_WATER) await new Promise((resolve) => setTimeout(resolve, 2));
    } else {
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  await done;
  return mbps(SIZE, performance.now() - start);
}

/** GET over any byte stream; resolves with the time to the first byte and to the last. */
function timedGet(
  stream: ByteStream,
  path: string,
  start: number,
): Promise<{ firstMs: number; totalMs: number; bytes: number }> {
  let firstMs = -1;
  let bytes = 0;
  return new Promise((resolve, reject) => {
    stream.on('data', (chunk) => {
      if (firstMs < 0) firstMs = performance.now() - start;
      bytes += chunk.length;
    });
    stream.on('end', () => stream.end());
    stream.on('close', (error) =>
      error ? reject(error) : resolve({ firstMs, totalMs: performance.now() - start, bytes }),
    );
    stream.resume();
    stream.write(Buffer.from(`GET ${path} HTTP/1.0\r\nHost: ${HOST}\r\n\r\n`));
  });
}

async function tunnelGet(client: TunnelClient, site: TestSite, path: string) {
  const start = performance.now();
  const stream = await client.open({ kind: 'tcp', host: HOST, port: site.port });
  return timedGet(stream, path, start);
}

/** Plain TCP from this process to the site: the baseline with no tunnel at all. */
function tcpGet(site: TestSite, path: string): Promise<{ firstMs: number; totalMs: number; bytes: number }> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: HOST, port: site.port });
    let firstMs = -1;
    let bytes = 0;
    socket.on('connect', () => socket.write(`GET ${path} HTTP/1.0\r\nHost: ${HOST}\r\n\r\n`));
    socket.on('data', (chunk) => {
      if (firstMs < 0) firstMs = performance.now() - start;
      bytes += chunk.length;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve({ firstMs, totalMs: performance.now() - start, bytes }));
  });
}

/** The relay in a child process, linked to a client peer and to the exit engine here. */
async function startRelayProcess(exit: ExitEngine, profileDir: string | undefined) {
  const child = fork(join(here, 'relay-process.ts'), [], {
    execArgv: ['--import', 'tsx', ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const createPeer = nodePeerFactory();
  const peers = { client: createPeer({ initiator: true }), exit: createPeer({ initiator: false }) };
  const post = (message: ParentMessage) => child.send(message);
  for (const side of ['client', 'exit'] as const) {
    peers[side].on('signal', (data) => post({ type: 'signal', side, data }));
  }
  let onCpu: ((message: Extract<ChildMessage, { type: 'cpu' }>) => void) | undefined;
  const clientLinked = new Promise<void>((resolve) => {
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'signal') peers[message.side].signal(message.data);
      else if (message.type === 'client-linked') resolve();
      else if (message.type === 'cpu') onCpu?.(message);
    });
  });
  const connected = (peer: SimplePeerLike) =>
    new Promise<void>((resolve) => peer.on('connect', () => resolve()));
  await Promise.all([connected(peers.client), connected(peers.exit), clientLinked]);
  exit.addLink(new PeerLink(peers.exit));
  return {
    clientLink: new PeerLink(peers.client),
    cpu: () =>
      new Promise<{ seconds: number; bytes: number }>((resolve) => {
        onCpu = (message) =>
          resolve({ seconds: (message.userUs + message.systemUs) / 1e6, bytes: message.bytes });
        post({ type: 'cpu' });
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        post({ type: 'stop' });
      }),
  };
}

/** Time to the first byte of a response from a fresh path request, with the signaling server in the loop. */
async function measureSetup(site: TestSite): Promise<number[]> {
  const signaling = await startSignalingServer({ port: 0 });
  const dataDir = await mkdtemp(join(tmpdir(), 'underpass-bench-'));
  const WS = WebSocket as unknown as WebSocketConstructorLike;
  const exitNode = await startExitNode({
    signalingUrl: signaling.url,
    dataDir,
    allowDestinations: [`${HOST}/32`],
  });
  const relaySignaling = new SignalingClient({
    url: signaling.url,
    WebSocket: WS,
    hello: { role: 'relay', capacity: 8 },
  });
  const volunteer = new VolunteerEngine({
    signaling: relaySignaling,
    createPeer: nodePeerFactory(),
    capacity: 8,
  });
  await volunteer.start();
  const times: number[] = [];
  try {
    for (let run = 0; run < RUNS * 2 + 1; run++) {
      const clientSignaling = new SignalingClient({
        url: signaling.url,
        WebSocket: WS,
        hello: { role: 'client' },
      });
      // Connected beforehand: the clock starts at the path request, not at the WebSocket handshake.
      const welcomed = clientSignaling.connect();
      await welcomed;
      const preconnected = new Proxy(clientSignaling, {
        get(target, property, receiver) {
          if (property === 'connect') return () => welcomed;
          const value: unknown = Reflect.get(target, property, receiver);
          return typeof value === 'function'
            ? (value as (...args: unknown[]) => unknown).bind(target)
            : value;
        },
      });
      const protect = new ProtectEngine({
        signaling: preconnected,
        createPeer: nodePeerFactory(),
        mode: 'two-hop',
      });
      const start = performance.now();
      await protect.start();
      const stream = await protect.open({ kind: 'tcp', host: HOST, port: site.port });
      const { firstMs } = await timedGet(stream, '/', start);
      times.push(firstMs);
      protect.stop();
      clientSignaling.close();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    volunteer.stop();
    relaySignaling.close();
    await exitNode.close();
    await signaling.close();
    await rm(dataDir, { recursive: true, force: true });
  }
  return times.slice(1); // the first run also warms the relay→exit link
}

type CpuProfile = {
  nodes: {
    id: number;
    hitCount?: number;
    children?: number[];
    callFrame: { functionName: string; url: string; lineNumber: number };
  }[];
};

/**
 * Self time per function from a V8 CPU profile, largest first. Time inside native code (here: the WebRTC
 * binding) carries whatever name V8 gives the native template, often a wrong one, so it is labelled
 * "native" and charged to the JavaScript function that called it.
 */
function summarise(profile: CpuProfile): string[] {
  const parents = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const label = (frame: CpuProfile['nodes'][number]['callFrame']) => {
    const file = frame.url.includes('node_modules/')
      ? frame.url.slice(frame.url.lastIndexOf('node_modules/') + 'node_modules/'.length)
      : frame.url.slice(frame.url.lastIndexOf('/') + 1);
    return `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
  };
  const total = profile.nodes.reduce((n, node) => n + (node.hitCount ?? 0), 0) || 1;
  const byFunction = new Map<string, number>();
  for (const node of profile.nodes) {
    const frame = node.callFrame;
    let key: string;
    if (frame.url) key = label(frame);
    else if (frame.functionName.startsWith('(')) key = frame.functionName;
    else {
      const caller = byId.get(parents.get(node.id) ?? -1);
      key = `native, called from ${caller ? label(caller.callFrame) : '?'}`;
    }
    byFunction.set(key, (byFunction.get(key) ?? 0) + (node.hitCount ?? 0));
  }
  return [...byFunction.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([key, hits]) => `${((hits / total) * 100).toFixed(1).padStart(5)}%  ${key}`);
}

async function main(): Promise<void> {
  progress(
    `bench:tunnel — ${SIZE / MB} MB downloads, ${RUNS} runs each, ${cpus().length} CPUs, Node ${process.version}`,
  );
  const site = await startTestSite({ host: HOST, fileSize: SIZE });
  const results: BenchResult[] = [];
  const profileDir = PROFILE ? await mkdtemp(join(tmpdir(), 'underpass-prof-')) : undefined;

  // 1. Raw DataChannel.
  const [rawA, rawB] = await peerPair();
  const raw: number[] = [];
  for (let run = 0; run < RUNS; run++) raw.push(await rawDataChannelRun(rawA, rawB));
  rawA.close();
  rawB.close();
  const rawMbps = median(raw);
  progress(`raw DataChannel: ${raw.map((v) => v.toFixed(0)).join(', ')} Mbit/s`);

  // 2. Direct TCP.
  const tcp: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const { totalMs, bytes } = await tcpGet(site, '/file.bin');
    tcp.push(mbps(bytes, totalMs));
  }
  progress(`direct TCP: ${tcp.map((v) => v.toFixed(0)).join(', ')} Mbit/s`);

  // The exit engine of the tunnel runs: real TCP dialer, default policy plus the site's address.
  const staticKey = generateStaticKeyPair();
  const exit = new ExitEngine({
    staticKey,
    dialer: new TcpDialer({ policy: new ExitPolicy({ allowDestinations: [`${HOST}/32`] }) }),
    // As the exit node does (exit-node.ts); the client keeps the browser's pure-JS cipher.
    aead: nodeAead,
  });

  // 3. Direct: client → exit.
  const [directClientLink, directExitLink] = await peerPair();
  exit.addLink(directExitLink);
  const direct = new TunnelClient({ link: directClientLink, exitKey: staticKey.publicKey });
  await direct.ready();
  const directRuns: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const { totalMs, bytes } = await tunnelGet(direct, site, '/file.bin');
    directRuns.push(mbps(bytes, totalMs));
  }
  direct.close();
  directClientLink.close();
  progress(`direct (client → exit): ${directRuns.map((v) => v.toFixed(0)).join(', ')} Mbit/s`);

  // 4. Two hops: client → relay (its own process) → exit.
  const relay = await startRelayProcess(exit, profileDir);
  const twoHop = new TunnelClient({ link: relay.clientLink, exitKey: staticKey.publicKey });
  await twoHop.ready();
  await tunnelGet(twoHop, site, '/'); // warm
  const cpuBefore = await relay.cpu();
  const inspector = PROFILE ? new Session() : undefined;
  if (inspector) {
    inspector.connect();
    await inspector.post('Profiler.enable');
    await inspector.post('Profiler.start');
  }
  const twoHopRuns: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const { totalMs, bytes } = await tunnelGet(twoHop, site, '/file.bin');
    twoHopRuns.push(mbps(bytes, totalMs));
  }
  const cpuAfter = await relay.cpu();
  let parentProfile: string[] = [];
  if (inspector) {
    const { profile } = await inspector.post('Profiler.stop');
    await writeFile(join(profileDir!, 'client-and-exit.cpuprofile'), JSON.stringify(profile));
    parentProfile = summarise(profile as CpuProfile);
    inspector.disconnect();
  }
  const relayCpuPer100MB =
    (cpuAfter.seconds - cpuBefore.seconds) / ((cpuAfter.bytes - cpuBefore.bytes) / (100 * MB));
  progress(`two hops (client → relay → exit): ${twoHopRuns.map((v) => v.toFixed(0)).join(', ')} Mbit/s`);

  // 5. Added time to first byte: a small request over the established two-hop path vs the same request direct.
  const tunnelTtfb: number[] = [];
  const tcpTtfb: number[] = [];
  for (let run = 0; run < LATENCY_RUNS; run++) {
    tunnelTtfb.push((await tunnelGet(twoHop, site, '/')).firstMs);
    tcpTtfb.push((await tcpGet(site, '/')).firstMs);
  }
  twoHop.close();
  relay.clientLink.close();
  await relay.stop();
  exit.close();

  // 6. Setup: path request → first byte, through the signaling server, a volunteer relay and an exit node.
  const setup = await measureSetup(site);
  progress(`setup: ${setup.map((v) => v.toFixed(0)).join(', ')} ms`);
  await site.close();

  const directMbps = median(directRuns);
  const twoHopMbps = median(twoHopRuns);
  const rawBaseline = { metric: 'raw_datachannel_mbps', value: round(rawMbps, 1) };
  results.push(
    { metric: 'raw_datachannel_mbps', value: round(rawMbps, 1), unit: 'Mbit/s', runs: RUNS },
    {
      metric: 'direct_mbps',
      value: round(directMbps, 1),
      unit: 'Mbit/s',
      runs: RUNS,
      baseline: rawBaseline,
      ratio: round(directMbps / rawMbps, 3),
    },
    {
      metric: 'two_hop_mbps',
      value: round(twoHopMbps, 1),
      unit: 'Mbit/s',
      runs: RUNS,
      baseline: rawBaseline,
      ratio: round(twoHopMbps / rawMbps, 3),
    },
    { metric: 'direct_tcp_mbps', value: round(median(tcp), 1), unit: 'Mbit/s', runs: RUNS },
    {
      metric: 'two_hop_vs_raw_ratio',
      value: round(twoHopMbps / rawMbps, 3),
      unit: 'ratio',
      runs: RUNS,
      baseline: rawBaseline,
    },
    {
      metric: 'direct_vs_raw_ratio',
      value: round(directMbps / rawMbps, 3),
      unit: 'ratio',
      runs: RUNS,
      baseline: rawBaseline,
    },
    { metric: 'setup_p50_ms', value: round(median(setup), 1), unit: 'ms', runs: setup.length },
    {
      metric: 'added_ttfb_p50_ms',
      value: round(median(tunnelTtfb) - median(tcpTtfb), 2),
      unit: 'ms',
      runs: LATENCY_RUNS,
      baseline: { metric: 'direct_tcp_ttfb_p50_ms', value: round(median(tcpTtfb), 2) },
    },
    { metric: 'relay_cpu_s_per_100mb', value: round(relayCpuPer100MB, 3), unit: 's', runs: RUNS },
  );

  await report('tunnel', results, {
    two_hop_vs_raw_ratio: { text: '≥ 0.6', met: (v) => v >= 0.6 },
    direct_vs_raw_ratio: { text: '≥ 0.8', met: (v) => v >= 0.8 },
    setup_p50_ms: { text: '≤ 500', met: (v) => v <= 500 },
    added_ttfb_p50_ms: { text: '≤ 3', met: (v) => v <= 3 },
    relay_cpu_s_per_100mb: { text: '≤ 1', met: (v) => v <= 1 },
  });

  if (profileDir) {
    console.log('\nCPU profile of the two-hop downloads, client and exit process (self time):');
    for (const line of parentProfile) console.log(`  ${line}`);
    const relayProfile = (await readdir(profileDir)).find((f) => f.startsWith('CPU.'));
    if (relayProfile) {
      const profile = JSON.parse(await readFile(join(profileDir, relayProfile), 'utf8')) as Parameters<
        typeof summarise
      >[0];
      console.log('\nCPU profile of the relay process, whole life (self time):');
      for (const line of summarise(profile)) console.log(`  ${line}`);
    }
    console.log(`\nprofiles in ${profileDir} (open in Chrome DevTools → Performance)`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
