/**
 * `npx tsx bench/wan/accuracy.ts` — how close the emulated links come to what they are given, for the benchmark's
 * conditions: RTT (TCP echo, median and spread of 31), loss (20,000 paced UDP datagrams at 1 %), TCP at the
 * 100 Mbit/s bottleneck (one 50 MB upload, CUBIC), and the emulator's ceiling (TCP through a 10 Gbit/s link).
 */
import { symmetric, WanNetwork, type DirectionSpec } from './network.js';
import { Probes } from './probes.js';

const line = (text: string) => console.log(text);

async function main(): Promise<void> {
  const network = await WanNetwork.create({ roles: ['a', 'b'], links: [] });
  const probes = await Probes.start(network, 'b');
  const set = (spec: DirectionSpec) => network.setLinks([symmetric('a', 'b', spec)]);
  try {
    for (const rtt of [20, 50, 150]) {
      await set({ delayMs: rtt / 2, rateMbps: 100, queueMs: rtt >= 150 ? 100 : 50 });
      const rtts = await probes.rtts('a', 31);
      const mean = rtts.reduce((a, b) => a + b, 0) / rtts.length;
      const mdev = rtts.reduce((a, b) => a + Math.abs(b - mean), 0) / rtts.length;
      line(
        `RTT ${rtt} ms: median ${rtts[15]!.toFixed(2)}, min ${rtts[0]!.toFixed(2)}, max ${rtts[30]!.toFixed(2)}, mdev ${mdev.toFixed(2)}`,
      );
    }
    await set({ delayMs: 1, rateMbps: 100, queueMs: 50, loss: 0.01 });
    const loss = await probes.loss('a', 20_000);
    const counted = (await network.stats()).directions['a>b']!;
    // The emulator's own draw beside what arrived: the difference is the receiver's (socket buffer) or a timing slip.
    line(
      `loss 1 %: ${(loss * 100).toFixed(2)} % of 20,000 datagrams missing at the receiver; the emulator dropped ` +
        `${((counted.lost / (counted.lost + counted.delivered)) * 100).toFixed(2)} %`,
    );
    for (const rtt of [20, 50]) {
      await set({ delayMs: rtt / 2, rateMbps: 100, queueMs: 50 });
      line(
        `TCP at 100 Mbit/s, RTT ${rtt} ms, 50 MB: ${(await probes.tcpMbps('a', 50_000_000)).toFixed(1)} Mbit/s`,
      );
    }
    await set({ delayMs: 0, rateMbps: 10_000, queueMs: 50 });
    line(
      `ceiling: TCP through a 10 Gbit/s link, 200 MB: ${(await probes.tcpMbps('a', 200_000_000)).toFixed(0)} Mbit/s`,
    );
  } finally {
    probes.stop();
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
