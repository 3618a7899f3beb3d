/**
 * `npm run package`: everything a release hands out, in dist/ —
 *   the store-ready extension zips (`wxt zip`: Chrome without the development key, Firefox, and the sources
 *   zip Firefox's review asks for),
 *   the companion's npm package tarball, the companion's single executable for this platform,
 *   and SHA256SUMS over all of them (`sha256sum -c SHA256SUMS` checks them).
 * The extension is built against UNDERPASS_SIGNALING_URL / UNDERPASS_DIRECTORY_KEYS as `wxt build` is (README);
 * unset, against a loopback development network. Each step stops the run with what failed.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { COMPANION_DIR, writeCompanionBundles } from './companion-bundle.js';
import { buildExecutable } from './companion-executable.js';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const dist = join(root, 'dist');
// UNDERPASS_STORE_BUILD (wxt.config.ts): no development key in the manifest, built in .output/store so that the
// development build in .output (fixed id, what `npm start` and the tests load) stays as it is.
const wxtOutput = join(root, '.output', 'store');
const storeEnv = { ...process.env, UNDERPASS_STORE_BUILD: '1' };

async function step<T>(what: string, action: () => Promise<T>): Promise<T> {
  const started = Date.now();
  process.stdout.write(`${what}… `);
  try {
    const result = await action();
    process.stdout.write(`done (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    return result;
  } catch (error) {
    process.stdout.write('failed\n');
    const stderr = (error as { stderr?: unknown }).stderr;
    const detail = typeof stderr === 'string' && stderr.trim() ? stderr.trim() : (error as Error).message;
    throw new Error(`${what}: ${detail.slice(-4000)}`);
  }
}

async function zipsIn(directory: string): Promise<string[]> {
  try {
    return (await readdir(directory)).filter((name) => name.endsWith('.zip'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function main(): Promise<void> {
  await rm(dist, { recursive: true, force: true });
  await mkdir(dist, { recursive: true });

  // Zips from an earlier run would be copied as if they were this one's.
  for (const name of await zipsIn(wxtOutput)) await rm(join(wxtOutput, name));
  await step('Chrome extension zip (wxt zip)', () =>
    run('npx', ['wxt', 'zip'], { cwd: root, env: storeEnv }),
  );
  await step('Firefox extension zip (wxt zip -b firefox)', () =>
    run('npx', ['wxt', 'zip', '-b', 'firefox'], { cwd: root, env: storeEnv }),
  );
  const zips = await zipsIn(wxtOutput);
  if (zips.length < 2)
    throw new Error(`wxt zip left ${zips.length} zip(s) in ${wxtOutput}, expected 2 or more`);
  for (const name of zips) await copyFile(join(wxtOutput, name), join(dist, name));

  await step('companion bundles', () => writeCompanionBundles());
  await step('companion npm package (npm pack)', () =>
    // Scripts off: prepack would bundle again what the step above just bundled.
    run('npm', ['pack', '--ignore-scripts', '--pack-destination', dist], { cwd: COMPANION_DIR }),
  );
  await step(`companion executable (${process.platform}-${process.arch})`, () =>
    buildExecutable({ outDir: dist }),
  );

  const files = (await readdir(dist)).filter((name) => name !== 'SHA256SUMS').sort();
  const lines: string[] = [];
  for (const name of files) lines.push(`${await sha256(join(dist, name))}  ${name}`);
  await writeFile(join(dist, 'SHA256SUMS'), `${lines.join('\n')}\n`);
  console.log(`\n${dist}:\n${files.map((name) => `  ${name}`).join('\n')}\n  SHA256SUMS`);
}

main().catch((error: unknown) => {
  console.error(`npm run package failed: ${(error as Error).message}`);
  process.exit(1);
});
