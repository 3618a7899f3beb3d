/**
 * The parent's handles on the benchmark's other processes: the client (client-process.ts) and the relay
 * (relay-process.ts). Every party runs in its own process, as on separate machines, so that each one's
 * WebRTC stack and JavaScript get their own threads and their CPU time can be read alone.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientCommand, ClientReport, Target } from './client-process.js';
import type { GetTiming } from './http-timing.js';
import type { ChildMessage, ParentMessage } from './relay-process.js';

const here = fileURLToPath(new URL('.', import.meta.url));

/** How a child is started. */
export interface ChildOptions {
  /** Lanes (PeerConnections) of each of the child's links; the far end must open them with as many. */
  lanes: number;
  /** With one, the child writes its CPU profiles into `profileDir/<file without .ts>/`. */
  profileDir?: string;
}

function forkChild(file: string, { lanes, profileDir }: ChildOptions): ChildProcess {
  const profile = profileDir
    ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, file.replace('.ts', ''))}`]
    : [];
  return fork(join(here, file), ['--lanes', String(lanes)], {
    execArgv: ['--import', 'tsx', ...profile],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

/** A child's end of a WebRTC link (all its lanes), whose signals the parent carries. */
export interface SignalEnd {
  signal(data: unknown): void;
  onSignal(listener: (data: unknown) => void): void;
}

/** Carries each end's signals to the other. */
export function joinEnds(a: SignalEnd, b: SignalEnd): void {
  a.onSignal((data) => b.signal(data));
  b.onSignal((data) => a.signal(data));
}

type Reply<T extends ClientReport['type']> = Extract<ClientReport, { type: T }>;

export class ClientProcess {
  readonly end: SignalEnd;
  /** Resolves once the client's link to its first hop is up, every lane of it. */
  readonly linked: Promise<void>;
  private readonly child: ChildProcess;
  private waiting: {
    type: ClientReport['type'];
    resolve(report: ClientReport): void;
    reject(e: Error): void;
  }[] = [];
  private signalListener: ((data: unknown) => void) | undefined;

  constructor(options: ChildOptions) {
    this.child = forkChild('client-process.ts', options);
    let onLinked: () => void = () => undefined;
    let onGone: (error: Error) => void = () => undefined;
    this.linked = new Promise((resolve, reject) => {
      onLinked = resolve;
      onGone = reject;
    });
    this.child.on('message', (report: ClientReport) => {
      if (report.type === 'signal') this.signalListener?.(report.data);
      else if (report.type === 'linked') onLinked();
      else if (report.type === 'failed') this.waiting.shift()?.reject(new Error(report.message));
      else {
        const index = this.waiting.findIndex((waiter) => waiter.type === report.type);
        if (index >= 0) this.waiting.splice(index, 1)[0]!.resolve(report);
      }
    });
    // A client that dies must fail the benchmark, not leave it waiting for ever.
    this.child.on('exit', (code) => {
      const error = new Error(`the client process exited (code ${code})`);
      onGone(error);
      for (const waiter of this.waiting.splice(0)) waiter.reject(error);
    });
    this.end = {
      signal: (data) => this.send({ type: 'signal', data }),
      onSignal: (listener) => (this.signalListener = listener),
    };
  }

  /** Arms the client to count `bytes` of raw messages; resolves when they have all arrived. */
  receiveRaw(bytes: number): Promise<void> {
    return this.request({ type: 'receive-raw', bytes }, 'received').then(() => undefined);
  }

  tunnel(exitKey: Uint8Array): Promise<void> {
    return this.request({ type: 'tunnel', exitKey: [...exitKey] }, 'tunnel-ready').then(() => undefined);
  }

  async tunnelGet(target: Target): Promise<GetTiming> {
    return (await this.request({ type: 'tunnel-get', target }, 'timing')).timing;
  }

  async tcpGet(target: Target): Promise<GetTiming> {
    return (await this.request({ type: 'tcp-get', target }, 'timing')).timing;
  }

  /** CPU seconds the client process has used so far, all its threads. */
  async cpuSeconds(): Promise<number> {
    return (await this.request({ type: 'cpu' }, 'cpu')).seconds;
  }

  stop(): Promise<void> {
    return stopChild(this.child, () => this.send({ type: 'stop' }));
  }

  private request<T extends ClientReport['type']>(command: ClientCommand, type: T): Promise<Reply<T>> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ type, resolve: resolve as (report: ClientReport) => void, reject });
      this.send(command);
    });
  }

  private send(command: ClientCommand): void {
    this.child.send(command);
  }
}

export class RelayProcess {
  /** The relay's end towards its client, and its end towards the exit. */
  readonly clientEnd: SignalEnd;
  readonly exitEnd: SignalEnd;
  readonly clientLinked: Promise<void>;
  private readonly child: ChildProcess;
  private readonly listeners: Partial<Record<'client' | 'exit', (data: unknown) => void>> = {};
  private onCpu: ((message: Extract<ChildMessage, { type: 'cpu' }>) => void) | undefined;

  constructor(options: ChildOptions) {
    this.child = forkChild('relay-process.ts', options);
    let onLinked: () => void = () => undefined;
    let onGone: (error: Error) => void = () => undefined;
    this.clientLinked = new Promise((resolve, reject) => {
      onLinked = resolve;
      onGone = reject;
    });
    // A relay that dies (a lane that failed to connect, say) must fail the benchmark, not leave it waiting.
    this.child.on('exit', (code) => onGone(new Error(`the relay process exited (code ${code})`)));
    this.child.on('message', (message: ChildMessage) => {
      if (message.type === 'signal') this.listeners[message.side]?.(message.data);
      else if (message.type === 'client-linked') onLinked();
      else if (message.type === 'cpu') this.onCpu?.(message);
    });
    const end = (side: 'client' | 'exit'): SignalEnd => ({
      signal: (data) => this.post({ type: 'signal', side, data }),
      onSignal: (listener) => (this.listeners[side] = listener),
    });
    this.clientEnd = end('client');
    this.exitEnd = end('exit');
  }

  /** CPU seconds the relay process has used so far, all its threads. */
  cpuSeconds(): Promise<number> {
    return new Promise((resolve) => {
      this.onCpu = (message) => resolve(message.seconds);
      this.post({ type: 'cpu' });
    });
  }

  stop(): Promise<void> {
    return stopChild(this.child, () => this.post({ type: 'stop' }));
  }

  private post(message: ParentMessage): void {
    this.child.send(message);
  }
}

function stopChild(child: ChildProcess, askToStop: () => void): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    askToStop();
  });
}
