/**
 * A throwaway redis-server for tests and benchmarks: a free port on 127.0.0.1, no persistence, stopped by
 * stop(). Needs redis-server on PATH (Debian: apt-get install redis-server).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './ports.js';

export type RedisServer = { url: string; port: number; stop(): Promise<void> };

const START_TIMEOUT_MS = 10_000;

function waitUntilReady(child: ChildProcess): Promise<void> {
  let output = '';
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`redis-server did not start: ${output}`)),
      START_TIMEOUT_MS,
    );
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (/ready to accept connections/i.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}: ${output}`));
    });
  });
}

async function startOn(port: number, binary: string): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await waitUntilReady(child);
  } catch (error) {
    // Never leave a half-started server behind.
    child.kill('SIGKILL');
    throw error;
  }
  // Its output is no longer read; keep the pipes from filling up.
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

export async function startRedisServer(binary = 'redis-server'): Promise<RedisServer> {
  let lastError: unknown;
  // The port is free when chosen, but another process may take it before redis binds it: retry.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    try {
      const child = await startOn(port, binary);
      return {
        url: `redis://127.0.0.1:${port}`,
        port,
        stop: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGTERM');
          await exited;
        },
      };
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}
