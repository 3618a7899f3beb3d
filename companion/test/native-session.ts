import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export interface NativeSession {
  /** Every framed message the host wrote, in order. */
  messages: Record<string, unknown>[];
  /** The host's exit status once the browser side (our stdin) closed. */
  code: number | null;
  stderr: string;
}

/**
 * Plays the browser against a native-messaging launcher: starts it with the caller's origin, waits for `ready`,
 * asks for `status`, waits for the answer, then closes stdin as a browser closing the port does, and collects the
 * exit status. Fails (rather than hangs) if the host says something else or does not answer within `timeoutMs`.
 */
export function nativeSession(
  launcher: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 20_000,
): Promise<NativeSession> {
  return new Promise((resolve, reject) => {
    const child = spawn(launcher, args, { stdio: 'pipe', env });
    const messages: Record<string, unknown>[] = [];
    let stderr = '';
    let pending = Buffer.alloc(0);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`no answer within ${timeoutMs} ms; got ${JSON.stringify(messages)}; stderr: ${stderr}`),
      );
    }, timeoutMs);
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.stdout.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32LE(0)) {
        const length = pending.readUInt32LE(0);
        const message = JSON.parse(pending.subarray(4, 4 + length).toString('utf8')) as Record<
          string,
          unknown
        >;
        pending = pending.subarray(4 + length);
        messages.push(message);
        // After `ready`, ask once; after anything else (the answer, or an error), hang up.
        if (message.type === 'ready') child.stdin.write(frame({ type: 'status' }));
        else child.stdin.end();
      }
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ messages, code, stderr });
    });
  });
}

/** PATH as the test runs it, minus every directory that holds a `node`: proof that nothing looks node up. */
export function pathWithoutNode(): string {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '' && !existsSync(join(dir, 'node')))
    .join(delimiter);
}

/** What the browser writes: a uint32 length (little-endian) and that much UTF-8 JSON. */
function frame(message: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  const header = Buffer.alloc(4);
  header.writeUInt32LE(body.length, 0);
  return Buffer.concat([header, body]);
}
