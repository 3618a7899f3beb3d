/**
 * underpass-companion's command line as a child process: help for the command and every subcommand (stdout,
 * status 0, within 100 columns), usage errors on stderr with a hint to the right --help and status 2, runtime
 * errors naming what failed with status 1. Install refusals write nothing (install.test.ts checks the files).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/underpass-companion.js', import.meta.url));
const CHROME_ID = 'a'.repeat(32);
const FIREFOX_ID = 'underpass@example.org';

type RunResult = { status: number | null; stdout: string; stderr: string };

let home: string;
beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'underpass-companion-cli-'));
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

/** Runs the command to its end with HOME in a scratch directory (nothing reaches the real browsers). */
function run(args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, HOME: home } },
      (error, stdout, stderr) => {
        resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
      },
    );
  });
}

function expectFits(text: string): void {
  for (const line of text.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);
}

describe('underpass-companion help', () => {
  it.each([['-h'], ['--help'], ['help']])('%s lists the commands on stdout and exits 0', async (flag) => {
    const result = await run([flag]);
    expect(result.status).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^Usage: underpass-companion COMMAND/);
    for (const command of ['install', 'uninstall', 'serve', 'native'])
      expect(result.stdout).toContain(command);
    expectFits(result.stdout);
  });

  it.each([['install'], ['uninstall'], ['serve'], ['native']])(
    '%s --help and -h print that command’s help and exit 0',
    async (command) => {
      for (const flag of ['--help', '-h']) {
        const result = await run([command, flag]);
        expect(result.status, result.stderr).toBe(0);
        expect(result.stderr).toBe('');
        expect(result.stdout).toMatch(new RegExp(`^Usage: underpass-companion ${command}`));
        expect(result.stdout).toContain('-h, --help');
        expectFits(result.stdout);
      }
    },
  );

  it('install --help names its options', async () => {
    const { stdout } = await run(['install', '--help']);
    for (const option of ['--extension-id ID', '--browser NAME', '--user-data-dir DIR'])
      expect(stdout).toContain(option);
  });
});

describe('underpass-companion usage errors', () => {
  it.each([
    [[], 'missing command', 'underpass-companion'],
    [['frob'], 'unknown command "frob"', 'underpass-companion'],
    [['install'], 'install needs --extension-id', 'underpass-companion install'],
    [
      ['install', '--extension-id', 'not/an/id'],
      '--extension-id: "not/an/id" is not a Chrome',
      'underpass-companion install',
    ],
    [
      ['install', '--browser', 'netscape', '--extension-id', CHROME_ID],
      '--browser must be one of',
      'underpass-companion install',
    ],
    [
      ['install', '--browser', 'chromium', '--extension-id', FIREFOX_ID],
      '--browser chromium needs a Chrome',
      'underpass-companion install',
    ],
    [
      ['install', '--browser', 'firefox', '--user-data-dir', '/tmp/x', '--extension-id', FIREFOX_ID],
      '--user-data-dir is for Chromium and Chrome',
      'underpass-companion install',
    ],
    [
      ['install', '--extension-id', CHROME_ID, '--force'],
      'unknown option --force',
      'underpass-companion install',
    ],
    [['uninstall', '--browser', 'lynx'], '--browser must be one of', 'underpass-companion uninstall'],
    [
      ['serve', '--socks-port', 'x'],
      '--socks-port must be a port from 0 to 65535, got "x"',
      'underpass-companion serve',
    ],
    [
      ['serve', '--data-port', '70000'],
      '--data-port must be a port from 0 to 65535',
      'underpass-companion serve',
    ],
    [
      ['serve', '--extension-id', FIREFOX_ID],
      '--extension-id must be a Chrome extension id',
      'underpass-companion serve',
    ],
    [['serve', '--socks-port'], '--socks-port needs a value', 'underpass-companion serve'],
  ])('%j: status 2, what was wrong, then the hint', async (args, message, helpCommand) => {
    const result = await run(args);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    const [first, hint, rest] = result.stderr.split('\n');
    expect(first).toMatch(/^underpass-companion: /);
    expect(first).toContain(message);
    expect(hint).toBe(`Run '${helpCommand} --help' for usage.`);
    expect(rest).toBe('');
  });
});

describe('underpass-companion runtime errors', () => {
  let taken: Server;
  beforeAll(async () => {
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => taken.close(resolve));
  });

  it('serve on a port in use exits 1 naming the address', async () => {
    const { port } = taken.address() as AddressInfo;
    const result = await run(['serve', '--socks-port', String(port)]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`underpass-companion: `);
    expect(result.stderr).toContain(`127.0.0.1:${port}`);
  });
});
