/**
 * The client of the WAN benchmark, in its own namespace: it receives the raw DataChannel baseline, runs a
 * TunnelClient over each path the parent builds (direct to the exit, or through the relay), and measures
 * downloads, time to first byte and page loads through a path or over plain TCP, and the setup of a fresh
 * two-hop path (ProtectEngine on the signaling server). A Node client seals with Node's ChaCha20-Poly1305,
 * as in bench:tunnel.
 */
import { connect as tcpConnect } from 'node:net';
import WebSocket from 'ws';
import { ProtectEngine, TunnelClient } from '@underpass/shared/engines';
import { NodeSocketStream, type ByteStream } from '@underpass/shared/streams';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { DEVELOPMENT_DIRECTORY_KEYS, DEVELOPMENT_TRUST } from '@underpass/shared/trust';
import { StripedLink, type Link } from '@underpass/shared/links';
import { nodeAead } from '../../exit-node/src/node-aead.js';
import { nodePeerFactory } from '../../exit-node/src/node-peer.js';
import { Peers, serve } from './serve.js';

/** How a request reaches the website: through a named tunnel, or over plain TCP (the baseline). */
export type Via = { tunnel: string } | { tcp: true };
export type Target = { host: string; port: number };
/** Bytes received in each second of a download, from the request on; and the first byte's time. */
export type Download = { perSecond: number[]; firstByteMs: number };

/** Requests go with their stream's OPEN (as the browser's do through the companion) unless --early-data off. */
const EARLY_DATA = process.env.BENCH_EARLY_DATA !== 'off';

const peers = new Peers();
const tunnels = new Map<string, TunnelClient>();
/** Each tunnel's link, for what its lanes hold (--trace). */
const tunnelLinks = new Map<string, Link>();

async function openStream(via: Via, target: Target): Promise<ByteStream> {
  if ('tunnel' in via) {
    const tunnel = tunnels.get(via.tunnel);
    if (!tunnel) throw new Error(`no tunnel ${via.tunnel}`);
    const request = { kind: 'tcp', host: target.host, port: target.port } as const;
    return EARLY_DATA ? tunnel.openEarly(request).stream : tunnel.open(request);
  }
  const socket = tcpConnect({ host: target.host, port: target.port, noDelay: true, allowHalfOpen: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.pause();
  return new NodeSocketStream(socket);
}

/**
 * GET `path`; `onData` sees every chunk with the time since `start`. Resolves when the response ends (the site
 * closes after it) or, with `forMs`, once that long has passed since `start` (the stream is then destroyed).
 */
async function get(
  via: Via,
  target: Target,
  path: string,
  onData: (bytes: number, atMs: number) => void,
  forMs?: number,
): Promise<void> {
  const start = performance.now();
  const stream = await openStream(via, target);
  await new Promise<void>((resolve, reject) => {
    let cut = false;
    const timer =
      forMs === undefined
        ? undefined
        : setTimeout(
            () => {
              cut = true;
              stream.destroy();
            },
            forMs - (performance.now() - start),
          );
    stream.on('data', (chunk) => onData(chunk.length, performance.now() - start));
    stream.on('end', () => stream.end());
    stream.on('close', (error) => {
      clearTimeout(timer);
      // Cut by this side at the end of the window, a stream closes with an error: that is the plan. Any other
      // error (before the window is over) fails the download rather than lowering its figure.
      if (error && !cut) reject(error);
      else resolve();
    });
    stream.resume();
    stream.write(Buffer.from(`GET ${path} HTTP/1.0\r\nHost: ${target.host}\r\n\r\n`));
  });
}

/**
 * `streams` downloads of /stream at once for `seconds`: bytes per second over all of them. Given several
 * paths, the streams take them in turn.
 */
async function download(
  via: Via | Via[],
  target: Target,
  streams: number,
  seconds: number,
): Promise<Download> {
  const vias = Array.isArray(via) ? via : [via];
  const perSecond = new Array<number>(seconds).fill(0);
  let firstByteMs = -1;
  const onData = (bytes: number, atMs: number) => {
    if (firstByteMs < 0) firstByteMs = atMs;
    const second = Math.floor(atMs / 1000);
    if (second < seconds) perSecond[second]! += bytes;
  };
  await Promise.all(
    Array.from({ length: streams }, (_, i) =>
      get(vias[i % vias.length]!, target, '/stream', onData, seconds * 1000),
    ),
  );
  return { perSecond, firstByteMs };
}

/** Times to the first byte of `/`, one request after the other. */
async function firstBytes(via: Via, target: Target, runs: number): Promise<number[]> {
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    let first = -1;
    await get(via, target, '/', (_, atMs) => (first = first < 0 ? atMs : first));
    times.push(first);
  }
  return times;
}

/** A page and its `resources` sub-resources, `parallel` at a time (a browser's connections per host): ms. */
async function pageLoad(via: Via, target: Target, resources: number, parallel: number): Promise<number> {
  const start = performance.now();
  await get(via, target, '/', () => undefined);
  let next = 0;
  const worker = async () => {
    while (next < resources) await get(via, target, `/r/${next++}`, () => undefined);
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return performance.now() - start;
}

/** Bytes per second of raw messages on a link the parent built, for `seconds` from now. */
async function receiveRaw(name: string, seconds: number): Promise<number[]> {
  const link = await rawLinks.get(name);
  if (!link) throw new Error(`no raw link ${name}`);
  const perSecond = new Array<number>(seconds).fill(0);
  const start = performance.now();
  return new Promise((resolve) => {
    const onMessage = (message: Uint8Array) => {
      const second = Math.floor((performance.now() - start) / 1000);
      if (second < seconds) perSecond[second]! += message.length;
    };
    link.on('message', onMessage);
    setTimeout(() => {
      link.off('message', onMessage);
      resolve(perSecond);
    }, seconds * 1000);
  });
}
const rawLinks = new Map<string, ReturnType<Peers['open']>>();

/** Where a fresh path's setup went, ms from the path request (`--trace`). */
export type SetupPhases = {
  /** The broker named a relay and an exit. */
  path: number;
  /**
   * The first lane's ICE said connected. @roamhq/wrtc's libwebrtc says so only once DTLS is up too (its legacy
   * state, measured: the connection state changes in the same millisecond), so this is ICE + DTLS.
   */
  secured: number;
  /** The first lane of the link to the relay opened (then SCTP's association and the DataChannel). */
  link: number;
  /** Protect said `protected`: the Noise handshake through both hops, then the first PING's answer. */
  protected: number;
  /** The first byte of `/`: the stream's OPEN, the exit's TCP connect, the GET and its answer. */
  firstByte: number;
};

/**
 * Path request → first byte of `/` on a fresh two-hop path, with the signaling WebSocket already welcomed (as
 * bench:tunnel measures it): the broker's answer, WebRTC to the relay, relay→exit, Noise, stream open, GET.
 */
async function setup(signalingUrl: string, target: Target): Promise<SetupPhases> {
  const signaling = new SignalingClient({
    url: signalingUrl,
    WebSocket: WebSocket as unknown as WebSocketConstructorLike,
    hello: { role: 'client' },
  });
  const welcomed = signaling.connect();
  await welcomed;
  let start = 0;
  const since = () => performance.now() - start;
  const phases: Partial<SetupPhases> = {};
  const preconnected = new Proxy(signaling, {
    get(target, property, receiver) {
      if (property === 'connect') return () => welcomed;
      const value: unknown = Reflect.get(target, property, receiver);
      if (property === 'requestPath' && typeof value === 'function') {
        return async (...args: unknown[]) => {
          const path: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          phases.path ??= since();
          return path;
        };
      }
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  const createPeer = nodePeerFactory();
  const protect = new ProtectEngine({
    directoryKeys: DEVELOPMENT_DIRECTORY_KEYS,
    signaling: preconnected,
    createPeer: (options) => {
      const peer = createPeer(options);
      peer.on('iceStateChange', (state) => {
        if (state === 'connected' || state === 'completed') phases.secured ??= since();
      });
      peer.on('connect', () => (phases.link ??= since()));
      return peer;
    },
    mode: 'two-hop',
  });
  protect.on('state', (state) => {
    if (state.status === 'protected') phases.protected ??= since();
  });
  try {
    start = performance.now();
    await protect.start();
    const request = { kind: 'tcp', host: target.host, port: target.port } as const;
    const stream = EARLY_DATA ? protect.openEarly(request).stream : await protect.open(request);
    const firstByte = await new Promise<number>((resolve, reject) => {
      stream.once('data', () => {
        resolve(since());
        stream.destroy();
      });
      stream.once('close', (error) => reject(error ?? new Error('closed before the first byte')));
      stream.resume();
      stream.write(Buffer.from(`GET / HTTP/1.0\r\nHost: ${target.host}\r\n\r\n`));
    });
    const { path, secured, link, protected: up } = phases;
    if (path === undefined || secured === undefined || link === undefined || up === undefined)
      throw new Error('a setup phase went unseen');
    return { path, secured, link, protected: up, firstByte };
  } finally {
    protect.stop();
    signaling.close();
  }
}

serve({
  ...peers.handlers(),
  /** A tunnel over a new link to its first hop (the exit, or a relay): resolves once the exit has answered. */
  openTunnel: async (name: string, exitKey: number[], lanes = 1) => {
    const link = await peers.open(name, true, lanes);
    tunnelLinks.set(name, link);
    const tunnel = new TunnelClient({
      trust: DEVELOPMENT_TRUST,
      link,
      exitKey: Uint8Array.from(exitKey),
      aead: nodeAead,
    });
    await tunnel.ready();
    tunnels.set(name, tunnel);
  },
  closeTunnel: async (name: string) => {
    tunnels.get(name)?.close();
    tunnels.delete(name);
    tunnelLinks.delete(name);
    await peers.close(name);
  },
  openRawLink: async (name: string) => {
    const link = peers.open(name, true);
    rawLinks.set(name, link);
    await link;
  },
  closeRawLink: async (name: string) => {
    rawLinks.delete(name);
    await peers.close(name);
  },
  /** The tunnel's receive windows, for --trace. */
  windowState: (name: string) => tunnels.get(name)?.receiveWindowState,
  /** Stream bytes the tunnel has handed its streams (for --trace, beside what the DataChannel received). */
  delivered: (name: string) => tunnels.get(name)?.stats().bytesDown ?? 0,
  /** Bytes the tunnel's striped link holds for order (for --trace). */
  heldForOrder: (name: string) => {
    const link = tunnelLinks.get(name);
    return link instanceof StripedLink ? link.heldBytes : 0;
  },
  receiveRaw,
  download,
  firstBytes,
  pageLoad,
  setup,
});
