/**
 * Request/reply over a forked child's IPC channel: the parent of bench:torrent drives each party (exit, relay,
 * user) in its own process, as on its own machine, so that each one's CPU time and memory are its own.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Request = { id: number; method: string; args: unknown[] };
type Reply = { id: number; value?: unknown; error?: string };

const here = fileURLToPath(new URL('.', import.meta.url));
/** BENCH_TORRENT_CPU_PROF=DIR: every party writes a V8 CPU profile (.cpuprofile) into DIR when it exits. */
const profileDir = process.env.BENCH_TORRENT_CPU_PROF;

/** The parent's handle on a child process that answers `call`s; a child that dies fails every pending call. */
export class Child {
  private readonly process: ChildProcess;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private nextId = 1;
  private readonly exited: Promise<void>;

  constructor(file: string) {
    this.process = fork(join(here, file), [], {
      // Profiles are named by Node (CPU.<date>.<pid>.<thread>…): tsx's loader thread writes one too.
      execArgv: ['--import', 'tsx', ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.process.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.error !== undefined) waiter?.reject(new Error(`${file}: ${reply.error}`));
      else waiter?.resolve(reply.value);
    });
    this.exited = new Promise((resolve) =>
      this.process.on('exit', (code) => {
        for (const waiter of this.pending.values()) waiter.reject(new Error(`${file} exited (code ${code})`));
        this.pending.clear();
        resolve();
      }),
    );
  }

  call<T>(method: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.process.send({ id, method, args } satisfies Request);
    });
  }

  /** Asks the child to `stop` (if it has such a method), then waits for it to exit; kills it after 5 s. */
  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const killer = setTimeout(() => this.process.kill('SIGKILL'), profileDir ? 60_000 : 5_000);
    await this.call('stop').catch(() => undefined);
    // A profiling child writes its profile as it exits by itself (a signal would lose it).
    if (!profileDir) this.process.kill('SIGTERM');
    await this.exited;
    clearTimeout(killer);
  }
}

/**
 * CPU seconds (all threads) of a process so far, and its peak resident memory since the previous reading (0 for
 * a process that does not sample its memory).
 */
export type Usage = { cpuSeconds: number; peakRssMiB: number };

/**
 * Samples this process's resident memory often enough to catch the peak of each step between two readings
 * (the kernel's maxRSS is a peak over the whole life, which the first large step would set for all later ones).
 * Only where the peak is reported (the exit): 50 readings a second are a system call each, on the same main
 * thread as the download, and in a profile of the user they cost more during torrents than during `tcp`.
 */
class UsageMeter {
  private peakRss = 0;

  constructor(private readonly sampleMemory: boolean) {
    if (sampleMemory) {
      this.peakRss = process.memoryUsage.rss();
      setInterval(() => this.sample(), 20).unref();
    }
  }

  read(): Usage {
    this.sample();
    const cpu = process.cpuUsage();
    const usage = { cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssMiB: this.peakRss / 2 ** 20 };
    if (this.sampleMemory) this.peakRss = process.memoryUsage.rss();
    return usage;
  }

  private sample(): void {
    if (this.sampleMemory) this.peakRss = Math.max(this.peakRss, process.memoryUsage.rss());
  }
}

/**
 * The child's side: answers each request with the handler of its method; every child answers `usage`, with its
 * peak memory when `sampleMemory`.
 */
export function serve(
  handlers: Record<string, (...args: never[]) => unknown>,
  options: { sampleMemory?: boolean } = {},
): void {
  const meter = new UsageMeter(options.sampleMemory ?? false);
  const all: Record<string, (...args: never[]) => unknown> = { usage: () => meter.read(), ...handlers };
  process.on('message', (request: Request) => {
    const handler = all[request.method];
    const reply = (message: Omit<Reply, 'id'>) => process.send?.({ id: request.id, ...message });
    if (!handler) return reply({ error: `no method ${request.method}` });
    Promise.resolve()
      .then(() => (handler as (...args: unknown[]) => unknown)(...request.args))
      .then(
        (value) => reply({ value }),
        (error: unknown) =>
          reply({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      );
  });
}
