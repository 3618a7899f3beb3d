/**
 * The child's side of a party process (party.ts): answers the parent's calls with its handlers, sends events,
 * and owns the process's WebRTC peers, whose signals the parent carries to the other party's peer of the same
 * link. The process ends when the parent's IPC channel closes, even after a SIGKILL of the parent.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { StripedLink, type Link } from '@underpass/shared/links';
import { nodePeerFactory } from '../../exit-node/src/node-peer.js';
import { LinkOverLanes } from '../lib/link-over-lanes.js';

export type Request = { id: number; method: string; args: unknown[] };
export type Reply = { id: number; value?: unknown; error?: string };
export type PartyEvent = { event: string; data: unknown };

type Handler = (...args: never[]) => unknown;

export function emit(event: string, data: unknown): void {
  process.send?.({ event, data } satisfies PartyEvent);
}

/** A lane's key in buffered(): the link's own name for lane 0, as links without lanes have. */
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

/** What bench:wan --trace reads of one striped link (`Peers.inFlight`). */
export interface StripedLinkFigures {
  /** Bytes sent and not yet receipted, on the fullest lane and on all. */
  most: number;
  all: number;
  /** Messages resent for stalled lanes so far. */
  resent: number;
  /** Bytes waiting for the pacer. */
  paced: number;
}

/** This process's ends of named WebRTC links. */
export class Peers {
  private readonly links = new Map<string, LinkOverLanes>();
  private readonly createPeer = nodePeerFactory();
  /** Measures the event loop's lateness once loopDelay is first asked (bench:wan --trace). */
  private loopDelays: IntervalHistogram | undefined;

  /**
   * Starts a link's peers, one per lane; resolves with the link once every lane is connected (the parent
   * carries the signals meanwhile, by the link's name). Both ends must open the link with the same number of
   * lanes.
   */
  open(name: string, initiator: boolean, lanes = 1): Promise<Link> {
    if (this.links.has(name)) throw new Error(`a link ${name} exists already`);
    const link = new LinkOverLanes({
      createPeer: this.createPeer,
      initiator,
      lanes,
      sendSignal: (data) => emit('signal', { name, data }),
    });
    this.links.set(name, link);
    return link.connected;
  }

  signal(name: string, data: unknown): void {
    this.links.get(name)?.signal(data);
  }

  /** Ends a link with its goodbye, as the product does (LinkOverLanes.close). */
  async close(name: string): Promise<void> {
    const link = this.links.get(name);
    this.links.delete(name);
    await link?.close();
  }

  /**
   * Bytes each live lane's DataChannel holds, not yet sent, by laneKey (for bench:wan --trace): read from the native
   * channel, since the polyfill's own figure (node-peer.ts) is refreshed only while above the low-water mark.
   */
  buffered(): Record<string, number> {
    const buffered: Record<string, number> = {};
    for (const [name, link] of this.links) {
      link.peers.forEach((peer, lane) => {
        const channel = peer._channel;
        const native = channel
          ? Object.getOwnPropertyDescriptor(Object.getPrototypeOf(channel), 'bufferedAmount')?.get
          : undefined;
        buffered[laneKey(name, lane)] = native ? (native.call(channel) as number) : peer.bufferSize;
      });
    }
    return buffered;
  }

  /**
   * Per striped link: the bytes in flight on its fullest lane and on all (sent, not yet receipted by the far end),
   * the messages it resent for stalled lanes so far and the bytes waiting for its pacer (bench:wan --trace), by the
   * link's name.
   */
  inFlight(): Record<string, StripedLinkFigures> {
    const inFlight: Record<string, StripedLinkFigures> = {};
    for (const [name, { link }] of this.links) {
      if (!(link instanceof StripedLink)) continue;
      const lanes = link.lanesInFlight;
      inFlight[name] = {
        most: Math.max(...lanes),
        all: lanes.reduce((sum, bytes) => sum + bytes, 0),
        resent: link.resentMessages,
        paced: link.pacedBytesWaiting,
      };
    }
    return inFlight;
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
    for (const peer of this.links.get(name)?.peers ?? []) {
      const pc = (peer as unknown as { _pc?: RTCPeerConnection })._pc;
      if (!pc) continue;
      (await pc.getStats()).forEach((entry: { type: string; bytesReceived?: number }) => {
        if (entry.type === 'data-channel') bytes += entry.bytesReceived ?? 0;
      });
    }
    return bytes;
  }

  /** The handlers every party has. */
  handlers(): Record<string, Handler> {
    return {
      signal: (name: string, data: unknown) => this.signal(name, data),
      closePeer: (name: string) => this.close(name),
      buffered: () => this.buffered(),
      inFlight: () => this.inFlight(),
      loopDelay: () => this.loopDelay(),
      channelBytesReceived: (name: string) => this.channelBytesReceived(name),
    };
  }
}
