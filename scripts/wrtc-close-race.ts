import { spawn } from 'node:child_process';
import { writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import wrtc from '@roamhq/wrtc';
import { LINK_HIGH_WATER } from '@underpass/shared/links';
import { peerLinkPair } from '../exit-node/test/peer-pair.js';

/**
 * `npx tsx scripts/wrtc-close-race.ts [abrupt|goodbye|links] [processes] [rounds]`: the native crash of
 * @roamhq/wrtc 0.10.0 that killed vitest workers ("Worker exited unexpectedly"), on its own. Two
 * RTCPeerConnections in one process; B sends 64 KiB messages without pause while A's connection closes.
 *
 * - abrupt: A closes its RTCPeerConnection while B sends. B's channel closes on libwebrtc's signaling thread,
 *   which clears the native channel pointer that a `send` on the JavaScript thread checked a moment before
 *   and then uses: SIGSEGV in `node_webrtc::RTCDataChannel::Send` (measured on 2 busy cores: 10 of 10
 *   processes, 10 crashes in 122 closes).
 * - goodbye: A asks first; B stops sending once it read that and answers; then A closes. No send is in
 *   flight when B's channel closes (measured: 0 crashes in 400 closes).
 * - links: the product's own path: two PeerLinks over nodePeerFactory; B sends up to the high-water mark
 *   while A's `close()` runs. It crashes as long as PeerLink tears the connection down while the far end
 *   may still be sending (measured: 6 crashes in 267 closes; with links that say goodbye first, 0 in 400).
 *
 * Each round runs in a child process, so a crash is counted instead of ending the run. Run it again on a new
 * @roamhq/wrtc: once `abrupt` stops crashing, the race is fixed there.
 */
type Mode = 'abrupt' | 'goodbye' | 'links';
const MESSAGE_BYTES = 64 * 1024;

async function connectedPair(): Promise<{
  a: RTCPeerConnection;
  b: RTCPeerConnection;
  channelA: RTCDataChannel;
  channelB: RTCDataChannel;
}> {
  const a = new wrtc.RTCPeerConnection();
  const b = new wrtc.RTCPeerConnection();
  a.onicecandidate = (event) => void (event.candidate && b.addIceCandidate(event.candidate).catch(() => {}));
  b.onicecandidate = (event) => void (event.candidate && a.addIceCandidate(event.candidate).catch(() => {}));
  const channelA = a.createDataChannel('race');
  const remote = new Promise<RTCDataChannel>(
    (resolve) => (b.ondatachannel = (event) => resolve(event.channel)),
  );
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription!);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription!);
  const channelB = await remote;
  const opened = (channel: RTCDataChannel) =>
    channel.readyState === 'open' ? undefined : new Promise((resolve) => (channel.onopen = resolve));
  await Promise.all([opened(channelA), opened(channelB)]);
  return { a, b, channelA, channelB };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One process, links mode: B's link sends until it is closed; A's link closes meanwhile. */
async function linksChild(rounds: number): Promise<void> {
  const message = new Uint8Array(MESSAGE_BYTES);
  for (let round = 0; round < rounds; round++) {
    writeSync(1, `round ${round}\n`);
    const [a, b] = await peerLinkPair();
    a.on('message', () => {});
    const bClosed = new Promise((resolve) => b.on('close', resolve));
    const pump = () => {
      if (b.closed) return;
      // As the tunnel sends: up to the link's high-water mark.
      for (let i = 0; i < 8 && b.bufferedAmount < LINK_HIGH_WATER; i++) b.send(message);
      setImmediate(pump);
    };
    pump();
    await sleep(Math.random() * 20);
    a.close();
    await Promise.race([bClosed, sleep(5_000)]);
    b.close();
  }
}

/** One process: `rounds` pairs, each closed by A while B sends. Writes a line per round begun. */
async function child(mode: Mode, rounds: number): Promise<void> {
  const message = new Uint8Array(MESSAGE_BYTES);
  for (let round = 0; round < rounds; round++) {
    writeSync(1, `round ${round}\n`);
    const { a, b, channelA, channelB } = await connectedPair();
    let stopped = false;
    const bClosed = new Promise((resolve) => (channelB.onclose = resolve));
    const pump = () => {
      if (stopped) return;
      try {
        for (let i = 0; i < 8; i++) channelB.send(message);
      } catch {
        stopped = true;
        return;
      }
      setImmediate(pump);
    };
    pump();
    await sleep(Math.random() * 20);
    if (mode === 'goodbye') {
      const answered = new Promise((resolve) => (channelA.onmessage = (event) => resolve(event.data)));
      channelB.onmessage = (event) => {
        if (typeof event.data !== 'string') return;
        stopped = true;
        channelB.send('done');
      };
      channelA.send('bye');
      await Promise.race([answered, sleep(2_000)]);
    }
    a.close();
    await Promise.race([bClosed, sleep(2_000)]);
    stopped = true;
    b.close();
  }
}

async function main(mode: Mode, processes: number, rounds: number): Promise<void> {
  let crashed = 0;
  let closes = 0;
  for (let i = 0; i < processes; i++) {
    const run = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), mode], {
      env: { ...process.env, WRTC_RACE_CHILD: String(rounds) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    run.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const signal = await new Promise<NodeJS.Signals | null>((resolve) =>
      run.on('exit', (_code, s) => resolve(s)),
    );
    const begun = out.split('\n').filter((line) => line.startsWith('round ')).length;
    closes += signal ? begun : rounds;
    if (signal) crashed += 1;
    console.log(`process ${i + 1}: ${signal ? `${signal} in round ${begun}` : `${rounds} rounds, no crash`}`);
  }
  console.log(
    `${mode}: ${crashed} of ${processes} processes crashed, ${crashed} crashes in ${closes} closes`,
  );
}

const mode: Mode = process.argv[2] === 'goodbye' || process.argv[2] === 'links' ? process.argv[2] : 'abrupt';
if (process.env.WRTC_RACE_CHILD) {
  if (mode === 'links') await linksChild(Number(process.env.WRTC_RACE_CHILD));
  else await child(mode, Number(process.env.WRTC_RACE_CHILD));
  process.exit(0);
} else {
  await main(mode, Number(process.argv[3] ?? 10), Number(process.argv[4] ?? 40));
}
