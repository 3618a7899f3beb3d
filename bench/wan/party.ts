/**
 * The parent's handle on one party of the WAN benchmark: a Node process in its role's network namespace
 * (WanNetwork.fork), driven by calls over IPC (serve.ts on the other side). A party that dies fails every call
 * still waiting.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { WanNetwork } from './network.js';
import type { PartyEvent, Reply } from './serve.js';

export class Party {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly signalRoutes = new Map<string, (data: unknown) => void>();
  private nextId = 1;
  private readonly exited: Promise<void>;

  constructor(
    network: WanNetwork,
    readonly role: string,
    file: string,
  ) {
    this.child = network.fork(role, fileURLToPath(new URL(file, import.meta.url)));
    this.child.on('message', (message: Reply | PartyEvent) => {
      if ('event' in message) {
        if (message.event === 'signal') {
          const { name, data } = message.data as { name: string; data: unknown };
          this.signalRoutes.get(name)?.(data);
        }
        return;
      }
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.error !== undefined) waiter?.reject(new Error(`${role}: ${message.error}`));
      else waiter?.resolve(message.value);
    });
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        const error = new Error(`${role} exited (${code ?? signal})`);
        for (const waiter of this.pending.values()) waiter.reject(error);
        this.pending.clear();
        resolve();
      }),
    );
  }

  call<T>(method: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null)
        return reject(new Error(`${this.role} is gone`));
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, method, args });
    });
  }

  /** Where this party's signals for peer `name` go. */
  routeSignals(name: string, to: (data: unknown) => void): void {
    this.signalRoutes.set(name, to);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 3_000);
    this.child.disconnect();
    await this.exited;
    clearTimeout(killer);
  }
}

/**
 * Builds a WebRTC link between party `a`'s peer `aName` and party `b`'s peer `bName`: `openA` and `openB` are
 * the calls that start each end and resolve once it is connected (and whatever it carries is ready); this
 * process carries the signals meanwhile. Resolves with the ms from the calls to both ends ready.
 */
export async function connect(
  a: { party: Party; name: string; open: () => Promise<unknown> },
  b: { party: Party; name: string; open: () => Promise<unknown> },
): Promise<number> {
  a.party.routeSignals(a.name, (data) => void b.party.call('signal', b.name, data).catch(() => undefined));
  b.party.routeSignals(b.name, (data) => void a.party.call('signal', a.name, data).catch(() => undefined));
  const start = performance.now();
  await Promise.all([a.open(), b.open()]);
  return performance.now() - start;
}
