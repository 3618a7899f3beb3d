import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { TorrentPolicy } from './torrent-policy.js';

/** One connect to an HTTP(S) tracker. */
const TRACKER_CONNECT_TIMEOUT_MS = 10_000;

/** What undici's Agent passes to a custom `connect` (undici lib/core/connect.js). */
interface ConnectOptions {
  hostname: string;
  protocol: string;
  port: string | number;
  servername?: string | null;
}
type ConnectCallback = (error: Error | null, socket: Socket | null) => void;
type AgentConstructor = new (options: {
  connect: (options: ConnectOptions, callback: ConnectCallback) => void;
}) => object;

/**
 * The dispatcher bittorrent-tracker's HTTP client passes to `fetch` (its `proxyOpts.httpAgent`): every
 * connection it opens — the announce, and every redirect — is resolved here, judged by the policy, and
 * dialed to the allowed address only, from the exit's bind address. TLS keeps the tracker's name for SNI
 * and certificate checks.
 *
 * The Agent class is Node's own fetch's (undici inside Node): undici is not a dependency of the exit, and a
 * dispatcher of another undici version could not be mixed with Node's fetch anyway. Node installs its Agent
 * as the global dispatcher on the first fetch, so one `data:` fetch reaches the class without changing any
 * global. Undefined if it cannot be found: then the service drops HTTP trackers rather than use fetch's
 * unchecked default.
 */
export async function policyHttpAgent(
  policy: TorrentPolicy,
  bindAddress: string | undefined,
): Promise<object | undefined> {
  await fetch('data:,');
  const globalDispatcher = (globalThis as Record<symbol, unknown>)[Symbol.for('undici.globalDispatcher.1')];
  const Agent = (globalDispatcher as { constructor?: unknown } | undefined)?.constructor;
  if (typeof Agent !== 'function' || Agent.name !== 'Agent') return undefined;
  return new (Agent as AgentConstructor)({
    connect: (options, callback) => {
      const https = options.protocol === 'https:';
      const port = Number(options.port) || (https ? 443 : 80);
      // Of the bind address's family, when there is one: a socket bound to IPv4 cannot reach IPv6.
      const family = bindAddress ? (isIP(bindAddress) as 4 | 6) : undefined;
      policy.resolve('http-tracker', options.hostname, port, family).then(
        (address) => dial(address),
        (error: Error) => callback(error, null),
      );
      function dial(address: string): void {
        const name = options.hostname.replace(/^\[|\]$/g, '');
        const local = bindAddress ? { localAddress: bindAddress } : {};
        const socket = https
          ? tlsConnect({
              host: address,
              port,
              servername: options.servername ?? (isIP(name) ? undefined : name),
              ALPNProtocols: ['http/1.1'],
              ...local,
            })
          : netConnect({ host: address, port, ...local });
        socket.setTimeout(TRACKER_CONNECT_TIMEOUT_MS, () =>
          socket.destroy(new Error('tracker connect timed out')),
        );
        const onError = (error: Error) => callback(error, null);
        socket.once('error', onError);
        socket.once(https ? 'secureConnect' : 'connect', () => {
          socket.off('error', onError);
          socket.setTimeout(0);
          callback(null, socket);
        });
      }
    },
  });
}
