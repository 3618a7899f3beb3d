/** The real CLI as a child process: starts from flags, logs JSON, shuts down on SIGTERM telling peers. */
import { spawn } from 'node:child_process';
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

  it('exits with status 2 on a bad flag', async () => {
    const child = spawn(process.execPath, [bin, '--port', 'nope'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(err).toContain('--port must be an integer');
  });
});

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
