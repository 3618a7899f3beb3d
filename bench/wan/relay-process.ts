/**
 * The relay of the WAN benchmark, in its own namespace: a RelayEngine between one client link and one exit link
 * per two-hop path the parent builds (as bench/tunnel/relay-process.ts, but several paths over a run, one per
 * condition, each on fresh WebRTC links), and for the setup figure a volunteer on the signaling server.
 */
import WebSocket from 'ws';
import { RelayEngine, VolunteerEngine } from '@underpass/shared/engines';
import type { Link } from '@underpass/shared/links';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { nodePeerFactory } from '../../exit-node/src/node-peer.js';
import { Peers, serve } from './serve.js';

const peers = new Peers();
/** One two-hop path: the relay engine, and how its exit link (opened by `openExitSide`) reaches it. */
type Path = { relay: RelayEngine; resolveExit: (link: Link) => void };
const paths = new Map<string, Path>();
let volunteer: { engine: VolunteerEngine; signaling: SignalingClient } | undefined;

function path(name: string): Path {
  const existing = paths.get(name);
  if (existing) return existing;
  let resolveExit: (link: Link) => void = () => undefined;
  const exitLink = new Promise<Link>((resolve) => (resolveExit = resolve));
  const created = { relay: new RelayEngine({ connectExit: () => exitLink }), resolveExit };
  paths.set(name, created);
  return created;
}

serve({
  ...peers.handlers(),
  /** The relay opens the link to the exit, as in the real network. */
  openExitSide: async (name: string, lanes = 1) => {
    path(name).resolveExit(await peers.open(`${name}-exit`, true, lanes));
  },
  /** And answers the client's. */
  openClientSide: async (name: string, lanes = 1) => {
    path(name).relay.addClientLink(await peers.open(`${name}-client`, false, lanes));
  },
  /** Bytes waiting in a path's relay for its congested links (for bench:wan --trace). */
  queued: (name: string) => paths.get(name)?.relay.queuedBytes() ?? 0,
  closePath: async (name: string) => {
    paths.get(name)?.relay.close();
    paths.delete(name);
    await Promise.all([peers.close(`${name}-exit`), peers.close(`${name}-client`)]);
  },
  startVolunteer: async (signalingUrl: string) => {
    const signaling = new SignalingClient({
      url: signalingUrl,
      WebSocket: WebSocket as unknown as WebSocketConstructorLike,
      hello: { role: 'relay', capacity: 8 },
    });
    const engine = new VolunteerEngine({ signaling, createPeer: nodePeerFactory(), capacity: 8 });
    await engine.start();
    volunteer = { engine, signaling };
  },
  stopVolunteer: () => {
    volunteer?.engine.stop();
    volunteer?.signaling.close();
    volunteer = undefined;
  },
});
