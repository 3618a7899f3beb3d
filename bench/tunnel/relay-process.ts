/**
 * The relay of the two-hop benchmark, in its own process so that its CPU time can be measured alone
 * (process.cpuUsage) and so that it runs as it would in a volunteer's browser: beside, not inside, the
 * client and the exit. Its links to both have `--lanes N` PeerConnections; the parent hands their WebRTC
 * signals across the IPC channel.
 */
import { parseArgs } from 'node:util';
import { RelayEngine } from '@underpass/shared/engines';
import { nodePeerFactory } from '../../exit-node/src/node-peer.js';
import { processCpuSeconds } from '../lib/process-cpu.js';
import { LinkOverLanes } from '../lib/link-over-lanes.js';

type Side = 'client' | 'exit';
export type ParentMessage =
  { type: 'signal'; side: Side; data: unknown } | { type: 'cpu' } | { type: 'stop' };
export type ChildMessage =
  | { type: 'signal'; side: Side; data: unknown }
  /** CPU seconds of this process so far, all threads. */
  | { type: 'cpu'; seconds: number }
  | { type: 'client-linked' };

const send = (message: ChildMessage) => process.send?.(message);
const { values: flags } = parseArgs({ options: { lanes: { type: 'string', default: '1' } } });
const createPeer = nodePeerFactory();
const open = (side: Side, initiator: boolean) =>
  new LinkOverLanes({
    createPeer,
    initiator,
    lanes: Number(flags.lanes),
    sendSignal: (data) => send({ type: 'signal', side, data }),
  });
// The relay opens the link to the exit (as in the real network) and answers the client's.
const links = { client: open('client', false), exit: open('exit', true) };
const failed = (error: unknown) => {
  // RelayProcess fails the benchmark when this process ends.
  console.error('a relay link failed:', error);
  process.exit(1);
};
links.exit.connected.catch(failed);
const relay = new RelayEngine({ connectExit: () => links.exit.connected });
links.client.connected.then((link) => {
  relay.addClientLink(link);
  send({ type: 'client-linked' });
}, failed);

process.on('message', (message: ParentMessage) => {
  switch (message.type) {
    case 'signal':
      links[message.side].signal(message.data);
      return;
    case 'cpu':
      send({ type: 'cpu', seconds: processCpuSeconds() });
      return;
    case 'stop':
      relay.close();
      links.client.destroy();
      links.exit.destroy();
      setTimeout(() => process.exit(0), 100);
      return;
  }
});
