/**
 * underpass-exit and underpass-directory as child processes: -h/--help (per subcommand too) on stdout within
 * 100 columns, usage errors on stderr with a hint and status 2, runtime errors naming what failed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '@underpass/shared/cli';
import { parseExitConfig } from '../src/config.js';
import { writeDevelopmentCertificate } from '../src/exit-node.js';
import { until } from './until.js';

const EXIT_BIN = fileURLToPath(new URL('../bin/underpass-exit.js', import.meta.url));
const DIRECTORY_BIN = fileURLToPath(new URL('../bin/underpass-directory.js', import.meta.url));

type RunResult = { status: number | null; stdout: string; stderr: string };

/** Runs a command to its end (none of these invocations starts serving). */
function run(bin: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

function expectHelp(result: RunResult, start: RegExp): void {
  expect(result.status, result.stderr).toBe(0);
  expect(result.stderr).toBe('');
  expect(result.stdout).toMatch(start);
  expect(result.stdout).toContain('-h, --help');
  for (const line of result.stdout.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);
}

function expectUsageError(result: RunResult, message: string, helpCommand: string): void {
  expect(result.status).toBe(2);
  expect(result.stdout).toBe('');
  const [first, hint] = result.stderr.split('\n');
  expect(first).toContain(message);
  expect(hint).toBe(`Run '${helpCommand} --help' for usage.`);
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'underpass-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('underpass-exit command line', () => {
  it.each([['-h'], ['--help']])('%s prints the help and exits 0', async (flag) => {
    const result = await run(EXIT_BIN, [flag]);
    expectHelp(result, /^Usage: underpass-exit/);
    expect(result.stdout).toContain('--torrent-upload-ratio R');
  });

  it.each([
    [['--bogus'], 'underpass-exit: unknown option --bogus'],
    [['--capacity', 'lots'], '--capacity must be a whole number from 1 to 1000, got "lots"'],
    [['--signaling', 'http://example.org'], '--signaling must be a ws:// or wss:// URL'],
    [['--allow-port', '25'], '--allow-port: port 25 is never allowed'],
    [['--torrent-max', '3'], '--torrent-max needs --torrents'],
    [['--own-address', 'here'], '--own-address: "here" is not an IP address'],
  ])('%j is a usage error (status 2)', async (args, message) => {
    expectUsageError(await run(EXIT_BIN, args), message, 'underpass-exit');
  });

  it('checks every flag before acting: a bad value with --print-identity creates no key', async () => {
    const dataDir = join(dir, 'print-identity');
    const result = await run(EXIT_BIN, ['--print-identity', '--data-dir', dataDir, '--max-streams', '0']);
    expectUsageError(result, '--max-streams must be a whole number from 1 to 4096', 'underpass-exit');
    expect(existsSync(dataDir)).toBe(false);
  });

  it('names the signaling URL it cannot reach', async () => {
    const dataDir = join(dir, 'unreachable');
    await writeDevelopmentCertificate({ dataDir, servesTorrents: false });
    // A port nothing listens on: taken, then given back.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const url = `ws://127.0.0.1:${port}`;
    const child = spawn(process.execPath, [EXIT_BIN, '--data-dir', dataDir, '--signaling', url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    try {
      await until('a signaling-reconnecting log line', () => out.includes('"signaling-reconnecting"'));
      const line = out.split('\n').find((text) => text.includes('"signaling-reconnecting"'))!;
      expect((JSON.parse(line) as { reason: string }).reason).toContain(
        `signaling connection to ${url} closed`,
      );
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  });

  it('parses a full command line into one checked configuration', () => {
    const parsed = parseExitConfig(
      [
        '--data-dir',
        '/srv/exit',
        '--signaling',
        'wss://signal.example/ws',
        '--allow-destination',
        '127.0.0.1/32',
        '--ice-server',
        'stun:stun.example:3478',
        '--idle-timeout',
        '30',
        '--torrents',
        '--torrent-disk',
        '2',
      ],
      {},
    );
    expect(parsed.kind).toBe('run');
    if (parsed.kind !== 'run') return;
    expect(parsed.config).toMatchObject({
      signalingUrl: 'wss://signal.example/ws',
      dataDir: '/srv/exit',
      certificate: '/srv/exit/exit-certificate.json',
      allowDestinations: ['127.0.0.1/32'],
      iceServers: [{ urls: 'stun:stun.example:3478' }],
      limits: { streamIdleTimeoutMs: 30_000 },
      torrents: { dir: '/srv/exit/torrents', dht: true, limits: { diskBudgetBytes: 2 * 1024 * 1024 } },
    });
    expect(parseExitConfig(['--data-dir', '/d'], { UNDERPASS_EXIT_CERTIFICATE: '/c.json' })).toMatchObject({
      config: { certificate: '/c.json' },
    });
    expect(() => parseExitConfig(['--ice-server', 'http://x'], {})).toThrow(UsageError);
    // A bad value from the environment is named by its variable, not by a flag nobody typed.
    expect(() => parseExitConfig([], { UNDERPASS_SIGNALING_URL: 'foo' })).toThrow(
      'UNDERPASS_SIGNALING_URL: "foo" is not a URL',
    );
  });
});

describe('underpass-directory command line', () => {
  it.each([['-h'], ['--help'], ['help']])('%s prints the command list and exits 0', async (flag) => {
    const result = await run(DIRECTORY_BIN, [flag]);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^Usage: underpass-directory COMMAND/);
    for (const command of ['keygen', 'public', 'issue', 'show', 'verify'])
      expect(result.stdout).toContain(command);
    for (const line of result.stdout.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);
  });

  it.each([['keygen'], ['public'], ['issue'], ['show'], ['verify']])(
    '%s --help prints that command’s help and exits 0',
    async (command) => {
      expectHelp(
        await run(DIRECTORY_BIN, [command, '--help']),
        new RegExp(`^Usage: underpass-directory ${command}`),
      );
      expectHelp(
        await run(DIRECTORY_BIN, [command, '-h']),
        new RegExp(`^Usage: underpass-directory ${command}`),
      );
    },
  );

  it.each([
    [[], 'missing command', 'underpass-directory'],
    [['frob'], 'unknown command "frob"', 'underpass-directory'],
    [['keygen'], 'keygen needs --out', 'underpass-directory keygen'],
    [['keygen', '--out', 'x', '--policy', 'y'], 'keygen takes no --policy', 'underpass-directory keygen'],
    [['issue', '--exit-key', 'short'], '--exit-key must be an exit key', 'underpass-directory issue'],
    [['show'], 'show needs a certificate file', 'underpass-directory show'],
    [['public', '--bogus'], 'unknown option --bogus', 'underpass-directory public'],
  ])('%j is a usage error (status 2)', async (args, message, helpCommand) => {
    expectUsageError(await run(DIRECTORY_BIN, args), message, helpCommand);
  });

  it('a missing file is a runtime error (status 1) that names it', async () => {
    const missing = join(dir, 'no-such-certificate.json');
    const result = await run(DIRECTORY_BIN, ['show', missing]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`underpass-directory: no certificate file at ${missing}`);
  });
});
