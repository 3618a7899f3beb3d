/** An exit node in its own process, started from its CLI as an operator would: for tests that kill or stop it. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { writeDevelopmentCertificate } from '../src/exit-node.js';

const exitBin = fileURLToPath(new URL('../bin/underpass-exit.js', import.meta.url));

/** Starts the exit; ready once it printed its `announced` line. It may reach 127.0.0.1 only. */
export async function spawnExit(
  signalingUrl: string,
  dataDir: string,
): Promise<{ child: ChildProcessWithoutNullStreams; exitKey: string }> {
  await writeDevelopmentCertificate({ dataDir, allowDestinations: ['127.0.0.1/32'], servesTorrents: false });
  const child = spawn(
    process.execPath,
    [exitBin, '--signaling', signalingUrl, '--data-dir', dataDir, '--allow-destination', '127.0.0.1/32'],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const exitKey = await new Promise<string>((resolve, reject) => {
    let seen = '';
    child.stdout.on('data', (chunk: Buffer) => {
      seen = (seen + chunk.toString()).slice(-8192);
      const match = /"event":"announced","exitKey":"([^"]+)"/.exec(seen);
      if (match) resolve(match[1] ?? '');
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`the exit process ended early (${code ?? signal ?? 'unknown'})`)),
    );
  });
  return { child, exitKey };
}

/** Sends `signal` (SIGKILL unless told) and resolves once the process has ended, with how it ended. */
export function stopExit(
  child: ChildProcessWithoutNullStreams,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once('exit', (code, endedBy) => resolve({ code, signal: endedBy }));
    child.kill(signal);
  });
}
