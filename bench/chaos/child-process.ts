/**
 * One of the chaos run's Node servers (a signaling instance or an exit) as a real child process started from
 * its own CLI, so that a fault can be a SIGKILL — nothing closes cleanly, as when a machine dies — and a
 * restart is the same command again (same port, same data directory, so the same identity).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

export type ServerProcessOptions = {
  /** Shown in errors and in the log file's lines. */
  name: string;
  /** The CLI script (a bin/*.js that loads tsx) and its arguments. */
  script: string;
  args: readonly string[];
  /** A line of its output that says it is serving (its pino `ready` line). */
  ready: RegExp;
  /** Where its output goes (appended across restarts), for a reader of a failed run. */
  logFile: string;
  /** How long a start may take before it is an error. */
  startTimeoutMs?: number;
};

const DEFAULT_START_TIMEOUT_MS = 30_000;

export class ServerProcess {
  private child: ChildProcess | undefined;
  private readonly log: WriteStream;

  constructor(private readonly options: ServerProcessOptions) {
    this.log = createWriteStream(options.logFile, { flags: 'a' });
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts it and resolves once it printed its ready line; rejects (and kills it) if it did not in time. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.options.name} is already running`);
    const child = spawn(process.execPath, [this.options.script, ...this.options.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const timeoutMs = this.options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    this.log.write(`--- ${new Date().toISOString()} start ${this.options.name} (pid ${child.pid})\n`);
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${this.options.name} did not get ready within ${timeoutMs} ms`));
      }, timeoutMs);
      const onData = (chunk: Buffer): void => {
        this.log.write(chunk);
        // Only the recent output matters for the ready line; bound what is kept.
        seen = (seen + chunk.toString()).slice(-8192);
        if (this.options.ready.test(seen)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        this.log.write(`--- ${this.options.name} exited (code ${code}, signal ${signal})\n`);
        reject(new Error(`${this.options.name} exited before it was ready (code ${code}, signal ${signal})`));
      });
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  /** SIGKILL: the process dies at once, its sockets are closed by the kernel, nobody is told. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM (its clean shutdown), then SIGKILL after a grace period; for the end of the run. */
  async stop(graceMs = 5_000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }

  async close(): Promise<void> {
    await this.stop();
    await new Promise<void>((resolve) => this.log.end(resolve));
  }
}
