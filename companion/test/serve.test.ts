import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { decodePairingCode as checkPairingCode, encodePairingCode } from '@underpass/shared/data-port';

/** The pairing a code holds, or undefined for anything that is not a pairing code. */
const decodePairingCode = (code: string) => {
  const checked = checkPairingCode(code);
  return checked.ok ? checked.pairing : undefined;
};
import { converse, connectRequest, greeting, waitFor } from './helpers.js';

const BIN = fileURLToPath(new URL('../bin/underpass-companion.js', import.meta.url));
const ORIGIN = 'chrome-extension://abcdefghijklmnopabcdefghijklmnop';

describe('pairing codes', () => {
  it('round-trips and rejects anything else', () => {
    const info = { dataPort: 40123, socksPort: 1080, secret: 'A'.repeat(43) };
    const code = encodePairingCode(info);
    expect(code).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(JSON.parse(Buffer.from(code, 'base64url').toString())).toEqual(info);
    expect(decodePairingCode(`  ${code}\n`)).toEqual(info);
    expect(decodePairingCode('')).toBeUndefined();
    expect(decodePairingCode('not a code!')).toBeUndefined();
    expect(
      decodePairingCode(Buffer.from('{"dataPort":0,"socksPort":1,"secret":"x"}').toString('base64url')),
    ).toBe(undefined);
    expect(decodePairingCode(Buffer.from('[]').toString('base64url'))).toBeUndefined();
  });
});

describe('underpass-companion serve', () => {
  it('prints a pairing code that authenticates the extension, and nothing works without it', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', '--socks-port', '0'], { stdio: 'pipe' });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      let out = '';
      const code = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const line = out.split('\n').find((l) => /^[A-Za-z0-9_-]{40,}$/.test(l));
          if (line) resolve(line);
        });
        child.once('exit', (status) => reject(new Error(`exited ${status}: ${out}`)));
      });
      const info = decodePairingCode(code);
      expect(info).toBeDefined();
      if (!info) return;

      const blocked = await converse(info.socksPort, [greeting(), connectRequest('example.com', 443)]);
      expect([...blocked.received]).toEqual([5, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]);

      const wrong = new WebSocket(`ws://127.0.0.1:${info.dataPort}/`, { headers: { Origin: ORIGIN } });
      await new Promise((resolve) => wrong.once('open', resolve));
      wrong.send(JSON.stringify({ type: 'hello', secret: 'guess'.repeat(9) }));
      expect(await new Promise((resolve) => wrong.once('close', resolve))).toBe(4401);

      const right = new WebSocket(`ws://127.0.0.1:${info.dataPort}/`, { headers: { Origin: ORIGIN } });
      await new Promise((resolve) => right.once('open', resolve));
      right.send(JSON.stringify({ type: 'hello', secret: info.secret }));
      const closed = new Promise((resolve) => right.once('close', resolve));
      await waitFor(() => stderr.includes('extension connected'), 'the companion to log the pairing');

      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(await closed).toBe(1001);
    } finally {
      if (child.exitCode === null) child.kill();
    }
  });
});
