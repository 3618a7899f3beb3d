/**
 * The WAN harness (bench/wan/network.ts + forwarder.py): namespaces come and go with the run, a dead run's are
 * swept, and the emulated links have the delay, loss and rate they were given, measured by programs in the
 * namespaces (bench/wan/probes.ts). Needs root, ip, python3 and /dev/net/tun (CI has them); skipped with the
 * reason otherwise.
 */
import { execFile } from 'node:child_process';
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_DIR, symmetric, sweepLeftovers, wanUnavailable, WanNetwork } from '../../bench/wan/network.js';
import { Probes } from '../../bench/wan/probes.js';

const run = promisify(execFile);
const unavailable = await wanUnavailable();
if (unavailable) console.warn(`WAN harness tests skipped: ${unavailable}`);

async function namespaces(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout.split('\n').map((line) => line.split(' ')[0]!);
}

describe.skipIf(unavailable !== undefined)('WAN harness', () => {
  let network: WanNetwork;
  let probes: Probes;

  beforeAll(async () => {
    const plain = { rateMbps: 100, queueMs: 50 };
    network = await WanNetwork.create({
      roles: ['a', 'b', 'c'],
      links: [
        symmetric('a', 'b', { delayMs: 10, ...plain }),
        // Loss one way only: c sends, b counts.
        { a: 'c', b: 'b', ab: { delayMs: 1, loss: 0.05, ...plain }, ba: { delayMs: 1, ...plain } },
      ],
      seed: 1,
      handleSignals: false,
    });
    probes = await Probes.start(network, 'b');
  });

  afterAll(async () => {
    probes?.stop();
    await network?.close();
  });

  it('gives each role a namespace of the run and locks the run', async () => {
    const names = await namespaces();
    for (const role of ['a', 'b', 'c']) expect(names).toContain(network.namespace(role));
    await access(join(LOCK_DIR, `${network.prefix}.pid`));
  });

  it('delays by the RTT it was given', async () => {
    const rtts = await probes.rtts('a', 21);
    // 20 ms RTT; the emulator wakes on time to well under a millisecond, Node's echo adds a little.
    expect(rtts[10]).toBeGreaterThanOrEqual(20);
    expect(rtts[10]).toBeLessThan(23);
  });

  it('loses the share it was given, and counts it', async () => {
    const sent = 2000;
    const loss = await probes.loss('c', sent);
    // 5 %: the binomial's standard deviation over 2,000 datagrams is 0.5 %.
    expect(loss).toBeGreaterThan(0.035);
    expect(loss).toBeLessThan(0.065);
    const stats = await network.stats();
    // The emulator counted what went missing: the datagrams, and the few `count` requests it may also have lost.
    const counted = stats.directions['c>b']!.lost;
    expect(counted).toBeGreaterThanOrEqual(Math.round(loss * sent));
    expect(counted).toBeLessThanOrEqual(Math.round(loss * sent) + 5);
    expect(stats.directions['c>b']!.queueDrops).toBe(0);
  });

  it('carries TCP at the rate it was given, no faster', async () => {
    await network.setLinks([symmetric('a', 'b', { delayMs: 5, rateMbps: 20, queueMs: 50 })]);
    const mbps = await probes.tcpMbps('a', 5_000_000);
    expect(mbps).toBeGreaterThan(20 * 0.85);
    expect(mbps).toBeLessThan(20 * 1.03);
    const stats = await network.stats();
    expect(stats.directions['a>b']!.bytes).toBeGreaterThan(5_000_000);
  });

  it('sweeps the namespaces of a run whose process is dead', async () => {
    const dead = await new Promise<number>((resolve) => {
      const child = execFile(process.execPath, ['-e', '0'], () => resolve(child.pid!));
    });
    const prefix = 'upw0dead';
    await run('ip', ['netns', 'add', `${prefix}-x`]);
    await writeFile(join(LOCK_DIR, `${prefix}.pid`), String(dead));
    const removed = await sweepLeftovers();
    expect(removed).toContain(`${prefix}-x`);
    expect(removed.some((name) => name.startsWith(network.prefix))).toBe(false);
    expect(await namespaces()).not.toContain(`${prefix}-x`);
  });

  it('removes its namespaces and its lock when closed; a second run beside it has its own', async () => {
    const second = await WanNetwork.create({ roles: ['solo'], links: [], handleSignals: false });
    expect(second.prefix).not.toBe(network.prefix);
    const ns = second.namespace('solo');
    expect(await namespaces()).toContain(ns);
    await second.close();
    expect(await namespaces()).not.toContain(ns);
    await expect(access(join(LOCK_DIR, `${second.prefix}.pid`))).rejects.toThrow();
  });
});
