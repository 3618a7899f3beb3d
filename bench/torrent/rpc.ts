/**
 * Request/reply over a forked child's IPC channel: the parent of bench:torrent drives each party (exit, relay,
 * user) in its own process, as on its own machine, so that each one's CPU time and memory are its own.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Request = { id: number; method: string; args: unknown[] };
type Reply = { id: number; value?: unknown; error?: string };

const here = fileURLToPath(new URL('.', import.meta.url));
/**
 * BENCH_TORRENT_CPU_PROF=DIR: every party writes a V8 CPU profile of its main thread for each step
 * (DIR/run<N>-<step>-<party>.cpuprofile), started and stopped at the step's boundaries by the parent, so that the
 * cold, warm and `tcp` downloads are read apart.
 */
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
      execArgv: ['--import', 'tsx'],
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
    const killer = setTimeout(() => this.process.kill('SIGKILL'), 5_000);
    await this.call('stop').catch(() => undefined);
    this.process.kill('SIGTERM');
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
 * The CPU profile of one step, when BENCH_TORRENT_CPU_PROF is set (nothing otherwise): V8's profiler through
 * the inspector, started and stopped by the parent at the step's boundaries.
 */
class StepProfiler {
  private session: Session | undefined;

  async start(): Promise<void> {
    if (!profileDir) return;
    if (!this.session) {
      this.session = new Session();
      this.session.connect();
      await this.session.post('Profiler.enable');
    }
    await this.session.post('Profiler.start');
  }

  /** Writes the profile since `start` to DIR/`name`.cpuprofile. */
  async stop(name: string): Promise<void> {
    if (!profileDir || !this.session) return;
    const { profile } = await this.session.post('Profiler.stop');
    await writeFile(join(profileDir, `${name}.cpuprofile`), JSON.stringify(profile));
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
  const profiler = new StepProfiler();
  const all: Record<string, (...args: never[]) => unknown> = {
    usage: () => meter.read(),
    profileStart: () => profiler.start(),
    profileStop: (name: string) => profiler.stop(name),
    ...handlers,
  };
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
