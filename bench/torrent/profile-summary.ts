/**
 * Reads the CPU profiles that `BENCH_TORRENT_CPU_PROF=DIR npm run bench:torrent` writes and prints, for each
 * party and step, where its main thread's time went: by module (a package of node_modules, a source folder of
 * ours, Node's internals, GC, idle) and the functions with the most self time.
 *
 *   npx tsx bench/torrent/profile-summary.ts DIR [party] [step] [top]   e.g. DIR user cold 25
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

type Frame = { functionName: string; url: string; lineNumber: number };
type ProfileNode = { id: number; callFrame: Frame };
type CpuProfile = { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };

/** Where a frame's code lives, coarse enough to add up: a package, a folder of ours, or what V8 calls it. */
function moduleOf(frame: Frame): string {
  const { url, functionName } = frame;
  if (!url) return `(${functionName || 'anonymous'})`.replace(/^\(\((.*)\)\)$/, '($1)');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  const ours = /\/(shared|exit-node|bench|test)\/(?:src\/)?([^/]+)/.exec(url);
  return ours ? `${ours[1]}/${ours[2]}` : url;
}

function summarize(profile: CpuProfile, top: number): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  let total = 0;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
    total += delta;
  });
  const byModule = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const module = moduleOf(frame);
    byModule.set(module, (byModule.get(module) ?? 0) + us);
    const where = frame.url ? `${frame.url.replace(/^.*node_modules\//, '')}:${frame.lineNumber + 1}` : '';
    const name = `${frame.functionName || '(anonymous)'} ${where}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  }
  const idle = byModule.get('(idle)') ?? 0;
  const busy = total - idle;
  const line = ([name, us]: [string, number]) =>
    `  ${(us / 1000).toFixed(0).padStart(7)} ms ${((100 * us) / busy).toFixed(1).padStart(5)}%  ${name}`;
  const sorted = (map: Map<string, number>) =>
    [...map].filter(([name]) => name !== '(idle)').sort((a, b) => b[1] - a[1]);
  return [
    `  total ${(total / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms, busy ${(busy / 1000).toFixed(0)} ms (% of busy below)`,
    '  by module:',
    ...sorted(byModule).slice(0, top).map(line),
    '  by function (self):',
    ...sorted(byFunction).slice(0, top).map(line),
  ].join('\n');
}

async function main(): Promise<void> {
  const [dir, party, step, top] = process.argv.slice(2);
  if (!dir) throw new Error('usage: profile-summary.ts DIR [party] [step] [top]');
  const files = (await readdir(dir))
    .filter((name) => name.endsWith('.cpuprofile'))
    .filter(
      (name) => (!party || name.endsWith(`-${party}.cpuprofile`)) && (!step || name.includes(`-${step}-`)),
    )
    .sort();
  for (const name of files) {
    const profile = JSON.parse(await readFile(join(dir, name), 'utf8')) as CpuProfile;
    process.stdout.write(`${name}\n${summarize(profile, Number(top ?? 20))}\n\n`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
