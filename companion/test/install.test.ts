import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { installNativeHost, manifestDirectory, uninstallNativeHost, HOST_NAME } from '../src/install.js';

const BIN = fileURLToPath(new URL('../bin/underpass-companion.js', import.meta.url));
const CHROME_ID = 'abcdefghijklmnopabcdefghijklmnop';
const OTHER_CHROME_ID = 'pppppppppppppppppppppppppppppppp';
const FIREFOX_ID = 'underpass@example.org';

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'underpass-install-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

function cli(args: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8' });
}

/** Starts the launcher as the browser would and returns its first framed message. */
function firstMessage(launcher: string, args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(launcher, args, { stdio: 'pipe' });
    let out = Buffer.alloc(0);
    child.stdout.on('data', (chunk: Buffer) => {
      out = Buffer.concat([out, chunk]);
      if (out.length >= 4 && out.length >= 4 + out.readUInt32LE(0)) {
        resolve(JSON.parse(out.subarray(4, 4 + out.readUInt32LE(0)).toString()) as Record<string, unknown>);
        child.stdin.end();
      }
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`launcher exited with ${code}`)));
  });
}

describe('install', () => {
  it('writes a Chromium manifest and an executable launcher into a user-data dir (CLI)', async () => {
    const dir = await tempDir();
    const result = cli([
      'install',
      '--browser',
      'chromium',
      '--user-data-dir',
      dir,
      '--extension-id',
      CHROME_ID,
      '--extension-id',
      OTHER_CHROME_ID,
    ]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe('');
    const hostDir = join(dir, 'NativeMessagingHosts');
    const launcher = join(hostDir, `${HOST_NAME}.sh`);
    const manifest = JSON.parse(await readFile(join(hostDir, `${HOST_NAME}.json`), 'utf8')) as unknown;
    expect(manifest).toEqual({
      name: 'org.underpass.companion',
      description: expect.any(String),
      path: launcher,
      type: 'stdio',
      allowed_origins: [`chrome-extension://${CHROME_ID}/`, `chrome-extension://${OTHER_CHROME_ID}/`],
    });
    expect((await stat(launcher)).mode & 0o777).toBe(0o755);
    const script = await readFile(launcher, 'utf8');
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    expect(script).toContain(`exec '${process.execPath}' '${BIN}' native "$@"`);

    // The launcher really starts the host, as the browser would.
    const ready = await firstMessage(launcher, [`chrome-extension://${CHROME_ID}/`]);
    expect(ready).toMatchObject({ type: 'ready', version: 1 });
  });

  it('writes Firefox manifests with allowed_extensions under $HOME', async () => {
    const home = await tempDir();
    const installed = await installNativeHost({
      browsers: ['chromium', 'chrome', 'firefox'],
      extensionIds: [CHROME_ID, FIREFOX_ID],
      homeDir: home,
      platform: 'linux',
      skipBrowsersWithoutIds: true,
    });
    expect(installed.map((i) => i.manifestPath)).toEqual([
      join(home, '.config/chromium/NativeMessagingHosts', `${HOST_NAME}.json`),
      join(home, '.config/google-chrome/NativeMessagingHosts', `${HOST_NAME}.json`),
      join(home, '.mozilla/native-messaging-hosts', `${HOST_NAME}.json`),
    ]);
    const firefox = JSON.parse(await readFile(installed[2]!.manifestPath, 'utf8')) as Record<string, unknown>;
    expect(firefox).toMatchObject({ name: HOST_NAME, type: 'stdio', allowed_extensions: [FIREFOX_ID] });
    expect(firefox).not.toHaveProperty('allowed_origins');
    expect(firefox.path).toBe(join(home, '.mozilla/native-messaging-hosts', `${HOST_NAME}.sh`));

    const removed = await uninstallNativeHost({
      browsers: ['chromium', 'chrome', 'firefox'],
      homeDir: home,
      platform: 'linux',
    });
    expect(removed).toHaveLength(6);
    for (const host of installed) expect(existsSync(host.manifestPath)).toBe(false);
  });

  it('with --browser all skips browsers it has no id for; via the CLI and $HOME', async () => {
    const home = await tempDir();
    const result = cli(['install', '--extension-id', FIREFOX_ID], { ...process.env, HOME: home });
    expect(result.status, result.stderr).toBe(0);
    expect(existsSync(join(home, '.mozilla/native-messaging-hosts', `${HOST_NAME}.json`))).toBe(true);
    expect(existsSync(join(home, '.config/chromium'))).toBe(false);
    const uninstall = cli(['uninstall', '--browser', 'firefox'], { ...process.env, HOME: home });
    expect(uninstall.status, uninstall.stderr).toBe(0);
    expect(existsSync(join(home, '.mozilla/native-messaging-hosts', `${HOST_NAME}.json`))).toBe(false);
  });

  it.each([
    ['an id that is neither Chrome nor Firefox', ['--extension-id', 'not/an/id']],
    ['a Chrome id with letters past p', ['--browser', 'chromium', '--extension-id', 'z'.repeat(32)]],
    ['no id for the chosen browser', ['--browser', 'chromium', '--extension-id', FIREFOX_ID]],
    ['no id at all', []],
    [
      'Firefox with a user-data dir',
      ['--browser', 'firefox', '--user-data-dir', '/tmp/x', '--extension-id', FIREFOX_ID],
    ],
    ['an unknown browser', ['--browser', 'netscape', '--extension-id', CHROME_ID]],
    ['an unknown option', ['--extension-id', CHROME_ID, '--force']],
  ])('refuses %s and writes nothing', async (_name, args) => {
    const home = await tempDir();
    const result = cli(['install', ...args], { ...process.env, HOME: home });
    expect(result.status).not.toBe(0);
    expect(result.stderr.length).toBeGreaterThan(0);
    expect(existsSync(join(home, '.config'))).toBe(false);
    expect(existsSync(join(home, '.mozilla'))).toBe(false);
  });

  it('knows the macOS locations and sends Windows users to `serve`', () => {
    expect(manifestDirectory('chrome', { homeDir: '/Users/u', platform: 'darwin' })).toBe(
      '/Users/u/Library/Application Support/Google/Chrome/NativeMessagingHosts',
    );
    expect(() => manifestDirectory('chrome', { homeDir: 'C:\\u', platform: 'win32' })).toThrow(/serve/);
  });

  it('quotes paths with spaces and quotes in the launcher', async () => {
    const dir = join(await tempDir(), "it's a dir");
    await mkdir(dir);
    const entryPath = join(dir, 'underpass companion.js');
    await symlink(BIN, entryPath);
    const [host] = await installNativeHost({
      browsers: ['chromium'],
      userDataDir: dir,
      extensionIds: [CHROME_ID],
      entryPath,
    });
    const script = await readFile(host!.launcherPath, 'utf8');
    expect(script).toContain(`/it'\\''s a dir/`);
    const ready = await firstMessage(host!.launcherPath, [`chrome-extension://${CHROME_ID}/`]);
    expect(ready).toMatchObject({ type: 'ready' });
  });
});
