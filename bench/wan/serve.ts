/**
 * The child's side of a party process (party.ts): answers the parent's calls with its handlers, sends events,
 * and owns the process's WebRTC peers, whose signals the parent carries to the other party's peer of the same
 * link. The process ends when the parent's IPC channel closes, even after a SIGKILL of the parent.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { PeerLink, StripedLink, type Link } from '@underpass/shared/links';
import type { SimplePeerLike } from '@underpass/shared/links';
import { nodePeerFactory } from '../../exit-node/src/node-peer.js';

export type Request = { id: number; method: string; args: unknown[] };
export type Reply = { id: number; value?: unknown; error?: string };
export type PartyEvent = { event: string; data: unknown };

type Handler = (...args: never[]) => unknown;

export function emit(event: string, data: unknown): void {
  process.send?.({ event, data } satisfies PartyEvent);
}

/** The key of a link's lane: the link's own name for lane 0, as links without lanes have. */
function laneKey(name: string, lane: number): string {
  return lane === 0 ? name : `${name}~${lane}`;
}

export function serve(handlers: Record<string, Handler>): void {
  process.on('disconnect', () => process.exit(0));
  process.on('message', (request: Request) => {
    const handler = handlers[request.method];
    const reply = (message: Omit<Reply, 'id'>) => process.send?.({ id: request.id, ...message });
    if (!handler) return reply({ error: `no method ${request.method}` });
    Promise.resolve()
      .then(() => (handler as (...args: unknown[]) => unknown)(...request.args))
      .then(
        (value) => reply({ value: value ?? null }),
        (error: unknown) =>
          reply({ error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      );
  });
}

/** This process's ends of named WebRTC links. */
export class Peers {
  private readonly peers = new Map<string, SimplePeerLike>();
  private readonly createPeer = nodePeerFactory();
  /** Measures the event loop's lateness once loopDelay is first asked (bench:wan --trace). */
  private loopDelays: IntervalHistogram | undefined;

  /**
   * Starts a link's peers, one per lane; resolves with the link once every lane is connected (the parent
   * carries the signals meanwhile, by the link's name; a further lane's are wrapped with its number, as
   * lane-signals.ts does). Both ends must open the link with the same number of lanes.
   */
  async open(name: string, initiator: boolean, lanes = 1): Promise<Link> {
    const connected = Array.from({ length: lanes }, (_, lane) => this.openLane(name, lane, initiator));
    const [first, ...others] = await Promise.all(connected);
    if (others.length === 0) return first!;
    const link = new StripedLink(first!);
    for (const lane of others) link.addLane(lane);
    return link;
  }

  private openLane(name: string, lane: number, initiator: boolean): Promise<PeerLink> {
    const key = laneKey(name, lane);
    if (this.peers.has(key)) throw new Error(`a peer ${key} exists already`);
    const peer = this.createPeer({ initiator });
    this.peers.set(key, peer);
    peer.on('signal', (data) => emit('signal', { name, data: lane === 0 ? data : { lane, signal: data } }));
    return new Promise((resolve, reject) => {
      peer.on('connect', () => resolve(new PeerLink(peer)));
      peer.on('error', (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))));
    });
  }

  signal(name: string, data: unknown): void {
    const { lane, signal } = data as { lane?: number; signal?: unknown };
    if (lane === undefined) this.peers.get(name)?.signal(data);
    else this.peers.get(laneKey(name, lane))?.signal(signal);
  }

  close(name: string): void {
    for (const key of this.lanesOf(name)) {
      this.peers.get(key)?.destroy();
      this.peers.delete(key);
    }
  }

  /** The keys of a link's lanes' peers. */
  private lanesOf(name: string): string[] {
    return [...this.peers.keys()].filter((key) => key === name || key.startsWith(`${name}~`));
  }

  /**
   * Bytes each live peer's DataChannel holds, not yet sent (for bench:wan --trace): read from the native
   * channel, since the polyfill's own figure (node-peer.ts) is refreshed only while above the low-water mark.
   */
  buffered(): Record<string, number> {
    const buffered: Record<string, number> = {};
    for (const [name, peer] of this.peers) {
      const channel = peer._channel;
      const native = channel
        ? Object.getOwnPropertyDescriptor(Object.getPrototypeOf(channel), 'bufferedAmount')?.get
        : undefined;
      buffered[name] = native ? (native.call(channel) as number) : peer.bufferSize;
    }
    return buffered;
  }

  /**
   * The longest this process's event loop was late since the last call (ms; for bench:wan --trace): data that
   * arrived while the loop was busy waited that long for JavaScript, where no buffer of ours shows it.
   */
  loopDelay(): number {
    this.loopDelays ??= monitorEventLoopDelay({ resolution: 5 });
    this.loopDelays.enable();
    const maxMs = this.loopDelays.max / 1e6;
    this.loopDelays.reset();
    return Number.isFinite(maxMs) ? maxMs : 0;
  }

  /** Bytes libwebrtc says the link's DataChannel has received (getStats), whether or not JavaScript has them yet. */
  async channelBytesReceived(name: string): Promise<number> {
    let bytes = 0;
    for (const key of this.lanesOf(name)) {
      const pc = (this.peers.get(key) as unknown as { _pc?: RTCPeerConnection } | undefined)?._pc;
      if (!pc) continue;
      (await pc.getStats()).forEach((entry: { type: string; bytesReceived?: number }) => {
        if (entry.type === 'data-channel') bytes += entry.bytesReceived ?? 0;
      });
    }
    return bytes;
  }

  closeAll(): void {
    for (const name of [...this.peers.keys()]) this.close(name);
  }

  /** The handlers every party has. */
  handlers(): Record<string, Handler> {
    return {
      signal: (name: string, data: unknown) => this.signal(name, data),
      closePeer: (name: string) => this.close(name),
      buffered: () => this.buffered(),
      loopDelay: () => this.loopDelay(),
      channelBytesReceived: (name: string) => this.channelBytesReceived(name),
    };
  }
}
