/**
 * The client of bench:tunnel, in its own process as on a user's machine: one link towards its first hop (the
 * exit in direct mode, a relay with two hops, or the raw sender of the baseline) over `--lanes N` PeerConnections,
 * driven over the IPC channel.
 * A Node host of the client engine uses Node's native ChaCha20-Poly1305, as the exit node does.
 */
import { parseArgs } from 'node:util';
import { TunnelClient } from '@underpass/shared/engines';
import type { Link } from '@underpass/shared/links';
import { nodePeerFactory } from '../../exit-node/src/node-peer.js';
import { nodeAead } from '../../exit-node/src/node-aead.js';
import { processCpuSeconds } from '../lib/process-cpu.js';
import { LinkOverLanes } from '../lib/link-over-lanes.js';
import { tcpGet, timedGet, type GetTiming } from './http-timing.js';
import { DEVELOPMENT_TRUST } from '@underpass/shared/trust';

export type Target = { host: string; port: number; path: string };
export type ClientCommand =
  | { type: 'signal'; data: unknown }
  /** Count `bytes` of raw DataChannel messages, then answer `received`. */
  | { type: 'receive-raw'; bytes: number }
  | { type: 'tunnel'; exitKey: number[] }
  | { type: 'tunnel-get'; target: Target }
  | { type: 'tcp-get'; target: Target }
  | { type: 'cpu' }
  | { type: 'stop' };
export type ClientReport =
  | { type: 'signal'; data: unknown }
  | { type: 'linked' }
  | { type: 'received' }
  | { type: 'tunnel-ready' }
  | { type: 'timing'; timing: GetTiming }
  /** CPU seconds of this process so far, all threads. */
  | { type: 'cpu'; seconds: number }
  | { type: 'failed'; message: string };

const report = (message: ClientReport) => process.send?.(message);
const fail = (error: unknown) => report({ type: 'failed', message: String(error) });

const { values: flags } = parseArgs({ options: { lanes: { type: 'string', default: '1' } } });
// The client starts the link to its first hop, as a client does in the real network.
const firstHop = new LinkOverLanes({
  createPeer: nodePeerFactory(),
  initiator: true,
  lanes: Number(flags.lanes),
  sendSignal: (data) => report({ type: 'signal', data }),
});
const link = firstHop.connected;
link.then(
  () => report({ type: 'linked' }),
  (error: unknown) => {
    // The parent learns it from the exit: ClientProcess fails whatever waits on this process.
    console.error('the client link failed:', error);
    process.exit(1);
  },
);
let tunnel: TunnelClient | undefined;

function receiveRaw(from: Link, bytes: number): void {
  let received = 0;
  const onMessage = (message: Uint8Array) => {
    received += message.length;
    if (received < bytes) return;
    from.off('message', onMessage);
    report({ type: 'received' });
  };
  from.on('message', onMessage);
}

async function tunnelGet(target: Target): Promise<GetTiming> {
  if (!tunnel) throw new Error('no tunnel yet');
  const start = performance.now();
  const stream = await tunnel.open({ kind: 'tcp', host: target.host, port: target.port });
  return timedGet(stream, target.host, target.path, start);
}

process.on('message', (command: ClientCommand) => {
  switch (command.type) {
    case 'signal':
      firstHop.signal(command.data);
      return;
    case 'receive-raw':
      void link.then((from) => receiveRaw(from, command.bytes));
      return;
    case 'tunnel':
      void link
        .then(async (first) => {
          tunnel = new TunnelClient({
            trust: DEVELOPMENT_TRUST,
            link: first,
            exitKey: Uint8Array.from(command.exitKey),
            aead: nodeAead,
          });
          await tunnel.ready();
          report({ type: 'tunnel-ready' });
        })
        .catch(fail);
      return;
    case 'tunnel-get':
      tunnelGet(command.target).then((timing) => report({ type: 'timing', timing }), fail);
      return;
    case 'tcp-get':
      tcpGet(command.target.host, command.target.port, command.target.path).then(
        (timing) => report({ type: 'timing', timing }),
        fail,
      );
      return;
    case 'cpu':
      report({ type: 'cpu', seconds: processCpuSeconds() });
      return;
    case 'stop':
      tunnel?.close();
      firstHop.destroy();
      setTimeout(() => process.exit(0), 100);
      return;
  }
});
