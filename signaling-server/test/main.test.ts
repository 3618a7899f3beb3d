/** The real CLI as a child process: starts from flags, logs JSON, shuts down on SIGTERM telling peers. */
import { execFile, spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RawPeer } from './helpers.js';

const bin = fileURLToPath(new URL('../bin/underpass-signaling.js', import.meta.url));

describe('underpass-signaling CLI', () => {
  it('serves on --port and exits cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, [bin, '--port', '0', '--host', '127.0.0.1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: Record<string, unknown>[] = [];
    const url = await new Promise<string>((resolve, reject) => {
      let buffer = '';
      child.stdout.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        let nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = JSON.parse(buffer.slice(0, nl)) as Record<string, unknown>;
          buffer = buffer.slice(nl + 1);
          lines.push(line);
          if (line['msg'] === 'ready') resolve(String(line['url']));
        }
      });
      child.once('exit', (code) => reject(new Error(`exited early with ${code}`)));
    });
    const peer = await RawPeer.join(url, { role: 'client' });
    const health = await fetch(url.replace('ws://', 'http://') + 'healthz');
    expect(await health.json()).toEqual({ ok: true });

    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect((await peer.next('error')).code).toBe('shutting-down');
    expect(await exited).toBe(0);
    // Logs are JSON and carry no peer addresses.
    const text = JSON.stringify(lines);
    expect(text).toContain('peer joined');
    expect(text).not.toMatch(/remoteAddress|"ip"/);
  });

  it('exits with status 2 on a bad flag, saying what was wrong and where the help is', async () => {
    const result = await run(['--port', 'nope']);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'underpass-signaling: --port must be an integer, got "nope"\n' +
        "Run 'underpass-signaling --help' for usage.\n",
    );
  });

  it.each([
    [['--bogus'], 'unknown option --bogus'],
    [['--port'], '--port needs a value'],
    [['stray'], 'unexpected argument "stray"'],
    [['--log-level', 'loud'], 'got "loud"'],
  ])('%j is a usage error (status 2): %s', async (args, message) => {
    const result = await run(args);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain("Run 'underpass-signaling --help' for usage.");
  });

  it.each([['-h'], ['--help']])(
    '%s prints the help on stdout within 100 columns and exits 0',
    async (flag) => {
      const result = await run([flag]);
      expect(result.status).toBe(0);
      expect(result.stderr).toBe('');
      expect(result.stdout).toMatch(/^Usage: underpass-signaling/);
      expect(result.stdout).toContain('--max-connections-per-address');
      expect(result.stdout).toContain('-h, --help');
      for (const line of result.stdout.split('\n')) expect(line.length).toBeLessThanOrEqual(100);
    },
  );

  it('a port it cannot listen on is a runtime error (status 1) that names the address', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const result = await run(['--port', String(port), '--log-level', 'silent']);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(`underpass-signaling: cannot start on 127.0.0.1:${port}: `);
      expect(result.stderr).toContain('EADDRINUSE');
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});

type RunResult = { status: number | null; stdout: string; stderr: string };

/** Runs the CLI to its end (these invocations never start serving). */
function run(args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

describe('underpass-signaling --log-addresses', () => {
  it('writes peer addresses only when asked', async () => {
    const child = spawn(
      process.execPath,
      [bin, '--port', '0', '--log-addresses', '--log-level', 'debug', '--max-connections-per-address', '1'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let text = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const match = /"url":"(ws:[^"]+)","msg":"ready"/.exec(text);
        if (match) resolve(match[1]!);
      });
      child.once('exit', (code) => reject(new Error(`exited early with ${code}`)));
    });
    const peer = await RawPeer.join(url, { role: 'client' });
    const refused = await RawPeer.open(url);
    expect((await refused.next('error')).code).toBe('rate-limited');
    peer.close();
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
    expect(text).toContain('"address":"127.0.0.1"');
  });
});
