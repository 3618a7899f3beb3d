/**
 * The relay of the two-hop benchmark, in its own process so that its CPU time can be measured alone
 * (process.cpuUsage) and so that it runs as it would in a volunteer's browser: beside, not inside, the
 * client and the exit. The parent hands WebRTC signals across the IPC channel.
 */
import { RelayEngine } from '@underpass/shared/engines';
import { PeerLink, type Link } from '@underpass/shared/links';
import { nodePeerFactory } from '../../exit-node/src/node-peer.js';
import { processCpuSeconds } from '../lib/process-cpu.js';

type Side = 'client' | 'exit';
export type ParentMessage =
  { type: 'signal'; side: Side; data: unknown } | { type: 'cpu' } | { type: 'stop' };
export type ChildMessage =
  | { type: 'signal'; side: Side; data: unknown }
  /** CPU seconds of this process so far, all threads. */
  | { type: 'cpu'; seconds: number }
  | { type: 'client-linked' };

const send = (message: ChildMessage) => process.send?.(message);
const createPeer = nodePeerFactory();
// The relay opens the link to the exit (as in the real network) and answers the client's.
const peers = { client: createPeer({ initiator: false }), exit: createPeer({ initiator: true }) };
for (const side of ['client', 'exit'] as const) {
  peers[side].on('signal', (data) => send({ type: 'signal', side, data }));
}
const exitLink = new Promise<Link>((resolve) =>
  peers.exit.on('connect', () => resolve(new PeerLink(peers.exit))),
);
const relay = new RelayEngine({ connectExit: () => exitLink });
peers.client.on('connect', () => {
  relay.addClientLink(new PeerLink(peers.client));
  send({ type: 'client-linked' });
});

process.on('message', (message: ParentMessage) => {
  switch (message.type) {
    case 'signal':
      peers[message.side].signal(message.data);
      return;
    case 'cpu':
      send({ type: 'cpu', seconds: processCpuSeconds() });
      return;
    case 'stop':
      relay.close();
      peers.client.destroy();
      peers.exit.destroy();
      setTimeout(() => process.exit(0), 100);
      return;
  }
});
