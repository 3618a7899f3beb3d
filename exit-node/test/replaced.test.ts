/**
 * Two exit processes with one key (issue 11, "Faults"): the one that proves the key last takes it over at the
 * broker, and the one replaced stops for good, saying why, instead of reconnecting (which would take the key
 * back, and so on for ever). In process, then as two real `underpass-exit` processes (status 1).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LogFields, Logger } from '@underpass/shared/logger';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/src/server.js';
import { sample } from '../../signaling-server/test/helpers.js';
import { developmentCertificates } from '../src/certificates.js';
import { startExitNode, writeDevelopmentCertificate, type ExitNode } from '../src/exit-node.js';
import { until } from './until.js';

const EXIT_BIN = fileURLToPath(new URL('../bin/underpass-exit.js', import.meta.url));

let dir: string;
let signaling: SignalingServer;
const exits: ExitNode[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'underpass-replaced-'));
});
afterEach(async () => {
  for (const exit of exits.splice(0)) await exit.close();
  await signaling?.close();
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Line = { level: string; fields: LogFields; message: string };

function recordingLogger(lines: Line[]): Logger {
  const at =
    (level: string) =>
    (fields: LogFields, message: string): void => {
      lines.push({ level, fields, message });
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

async function listedExits(): Promise<{ peerId: string; exitKey: string }[]> {
  const response = await fetch(new URL('/v1/exits', signaling.url.replace(/^ws/, 'http')));
  return ((await response.json()) as { exits: { peerId: string; exitKey: string }[] }).exits;
}

async function metric(name: string): Promise<number | undefined> {
  return sample(await signaling.metrics.text(), name);
}

describe('an exit replaced by another process with its key', () => {
  it('stops for good, says why, and leaves the key to the other', async () => {
    signaling = await startSignalingServer({ port: 0 });
    const dataDir = join(dir, 'in-process');
    const start = async (lines: Line[]) => {
      const exit = await startExitNode({
        certificate: developmentCertificates,
        signalingUrl: signaling.url,
        dataDir,
        logger: recordingLogger(lines),
      });
      exits.push(exit);
      return exit;
    };
    const firstLines: Line[] = [];
    const first = await start(firstLines);
    const second = await start([]);
    expect(second.exitKey).toBe(first.exitKey);

    const why = await first.ended;
    expect(why).toMatchObject({ code: 'replaced', message: expect.stringMatching(/took over/) });
    expect(first.signalingState()).toMatchObject({ status: 'stopped', code: 'replaced' });
    const line = firstLines.find((l) => l.fields['event'] === 'replaced');
    expect(line).toMatchObject({ level: 'error', message: expect.stringMatching(/another exit process/) });
    // No attempt after the refusal: the state went from connected straight to stopped.
    expect(firstLines.some((l) => l.fields['event'] === 'signaling-reconnecting')).toBe(false);

    expect(await listedExits()).toEqual([
      expect.objectContaining({ peerId: second.peerId, exitKey: second.exitKey }),
    ]);
    expect(second.signalingState()).toMatchObject({ status: 'connected' });
    // The first one's socket is gone and no other came from it: the second's is the only connection.
    await until('one connection left', async () => (await metric('underpass_signaling_connections')) === 1);
    expect(await metric('underpass_signaling_exit_takeovers_total')).toBe(1);
  });

  it('as a process: exits with status 1 and a log line naming the cause', async () => {
    signaling = await startSignalingServer({ port: 0 });
    const dataDir = join(dir, 'processes');
    await writeDevelopmentCertificate({ dataDir, servesTorrents: false });
    const startProcess = () => {
      const child = spawn(process.execPath, [EXIT_BIN, '--data-dir', dataDir, '--signaling', signaling.url], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const output = { text: '' };
      child.stdout.on('data', (chunk: Buffer) => (output.text += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      return { child, output, exited };
    };
    const first = startProcess();
    let second: ReturnType<typeof startProcess> | undefined;
    try {
      await until('the first exit is ready', () => first.output.text.includes('"event":"ready"'));
      second = startProcess();
      expect(await first.exited).toBe(1);
      const line = first.output.text.split('\n').find((text) => text.includes('"event":"replaced"'));
      expect(line, first.output.text).toBeDefined();
      expect(JSON.parse(line!)).toMatchObject({ code: 'replaced', msg: expect.stringMatching(/took over/) });
      await until('the second exit is ready', () => second!.output.text.includes('"event":"ready"'));
      const listed = await listedExits();
      expect(listed).toHaveLength(1);
    } finally {
      for (const proc of [first, second]) {
        if (!proc || proc.child.exitCode !== null) continue;
        proc.child.kill('SIGTERM');
        await proc.exited;
      }
    }
  });
});
