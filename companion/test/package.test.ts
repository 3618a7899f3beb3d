import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeCompanionBundles, COMPANION_DIR } from '../../scripts/companion-bundle.js';
import { HOST_NAME } from '../src/install.js';
import { nativeSession, pathWithoutNode } from './native-session.js';

const CHROME_ID = 'abcdefghijklmnopabcdefghijklmnop';

/**
 * The npm package as a user gets it: packed, installed from the tarball into a project outside the checkout with
 * no registry (everything it needs is in the tarball), and run through npx.
 */
describe('the companion npm package', () => {
  let work: string;
  let app: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'underpass-package-'));
    await writeCompanionBundles();
    // --ignore-scripts: prepack would bundle again; we just did.
    execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', work], {
      cwd: COMPANION_DIR,
      stdio: 'pipe',
    });
    const [tarball] = (await readdir(work)).filter((name) => name.endsWith('.tgz'));
    if (tarball === undefined) throw new Error(`npm pack wrote no tarball in ${work}`);
    app = join(work, 'app');
    execFileSync('mkdir', [app]);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'someone-else', private: true }));
    execFileSync(
      'npm',
      ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', join(work, tarball)],
      { cwd: app, stdio: 'pipe' },
    );
  }, 120_000);
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('holds the bin and the bundle only, declares no dependencies, and is not private', () => {
    const installed = join(app, 'node_modules', 'underpass-companion');
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(manifest.private).toBeUndefined();
    expect(manifest.dependencies).toBeUndefined();
    expect(manifest.bin).toEqual({ 'underpass-companion': './bin/underpass-companion.js' });
    expect(existsSync(join(installed, 'src'))).toBe(false);
    // Nothing was installed beside it: the bundle carries ws, zod and the shared code.
    expect(existsSync(join(app, 'node_modules', 'ws'))).toBe(false);
    expect(existsSync(join(app, 'node_modules', '@underpass'))).toBe(false);
  });

  it('answers --help through npx, outside the checkout', () => {
    const run = spawnSync('npx', ['--offline', 'underpass-companion', '--help'], {
      cwd: app,
      encoding: 'utf8',
    });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('Usage: underpass-companion COMMAND');
    expect(run.stdout).toMatch(/^ {2}install +register the companion/m);
  });

  it('installs into a profile, and the launcher it writes serves the browser without node on PATH', async () => {
    const profile = join(work, 'profile');
    const install = spawnSync(
      'npx',
      [
        '--offline',
        'underpass-companion',
        'install',
        '--browser',
        'chromium',
        '--user-data-dir',
        profile,
        '--extension-id',
        CHROME_ID,
      ],
      { cwd: app, encoding: 'utf8' },
    );
    expect(install.status, install.stderr).toBe(0);
    const launcher = join(profile, 'NativeMessagingHosts', `${HOST_NAME}.sh`);
    expect(readFileSync(launcher, 'utf8')).toContain(join(app, 'node_modules', 'underpass-companion', 'bin'));

    const session = await nativeSession(launcher, [`chrome-extension://${CHROME_ID}/`], {
      PATH: pathWithoutNode(),
      HOME: work,
    });
    expect(session.messages[0], session.stderr).toMatchObject({ type: 'ready', version: 1 });
    expect(session.messages[1]).toEqual({ type: 'status', tunnel: false, connections: 0, blocked: 0 });
    expect(session.code).toBe(0);
  });
});
