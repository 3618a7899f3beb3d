import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildExecutable, executableName } from '../../scripts/companion-executable.js';
import { HOST_NAME } from '../src/install.js';
import { nativeSession, pathWithoutNode } from './native-session.js';

const CHROME_ID = 'abcdefghijklmnopabcdefghijklmnop';

/** The single executable for people without Node, run as they would: no node anywhere on PATH. */
describe.runIf(process.platform === 'linux')('the companion single executable', () => {
  let work: string;
  let executable: string;
  const env = () => ({ PATH: pathWithoutNode(), HOME: join(work, 'home') });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'underpass-sea-test-'));
    executable = await buildExecutable({ outDir: work });
  }, 180_000);
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('is named for its platform and answers --help without node on PATH, with nothing else on stderr', () => {
    expect(executable.endsWith(executableName())).toBe(true);
    expect(spawnSync('sh', ['-c', 'command -v node'], { env: env() }).status).not.toBe(0);
    const run = spawnSync(executable, ['--help'], { env: env(), encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout.startsWith('Usage: underpass-companion')).toBe(true);
    expect(run.stderr).toBe('');
  });

  it('refuses a bad command with status 2', () => {
    const run = spawnSync(executable, ['frobnicate'], { env: env(), encoding: 'utf8' });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('unknown command');
  });

  it('installs itself as the native host, and the browser side gets ready and status', async () => {
    const profile = join(work, 'profile');
    const install = spawnSync(
      executable,
      ['install', '--browser', 'chromium', '--user-data-dir', profile, '--extension-id', CHROME_ID],
      { env: env(), encoding: 'utf8' },
    );
    expect(install.status, install.stderr).toBe(0);
    const launcher = join(profile, 'NativeMessagingHosts', `${HOST_NAME}.sh`);
    // The executable is its own entry: no node, no script path.
    expect(readFileSync(launcher, 'utf8')).toContain(`exec '${executable}' native "$@"`);
    const manifest = JSON.parse(
      readFileSync(join(profile, 'NativeMessagingHosts', `${HOST_NAME}.json`), 'utf8'),
    ) as Record<string, unknown>;
    expect(manifest).toMatchObject({ path: launcher, allowed_origins: [`chrome-extension://${CHROME_ID}/`] });

    const session = await nativeSession(launcher, [`chrome-extension://${CHROME_ID}/`], env());
    expect(session.messages[0], session.stderr).toMatchObject({ type: 'ready', version: 1 });
    expect(session.messages[1]).toEqual({ type: 'status', tunnel: false, connections: 0, blocked: 0 });
    expect(session.code).toBe(0);
  });

  it('tells a caller that is not an extension why, in one framed error, and exits 2', () => {
    const run = spawnSync(executable, ['native', 'https://not-an-extension.example/'], {
      env: env(),
      input: '',
    });
    expect(run.status).toBe(2);
    expect(run.stdout.readUInt32LE(0)).toBe(run.stdout.length - 4);
    expect(JSON.parse(run.stdout.subarray(4).toString('utf8'))).toMatchObject({
      type: 'error',
      code: 'bad-caller',
    });
  });
});
