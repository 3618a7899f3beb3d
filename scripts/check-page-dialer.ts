import { connect, type Socket } from 'node:net';
import { withDeadline } from '@underpass/shared/deadline';
import { StreamError } from '@underpass/shared/errors';
import { NodeSocketStream, type ByteStream } from '@underpass/shared/streams';
import type { TcpRequest } from '@underpass/shared/tunnel';
import type { TcpStreamDialer } from '../exit-node/src/stream-router.js';

/** The name only `npm start`'s exit knows: `.test` is reserved (RFC 2606), so no real resolver answers it. */
export const CHECK_PAGE_NAME = 'check.underpass.test';

/** Time for the one local connect; the page is on this machine, so anything longer means it is gone. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * The local ends (address and port) of the connections the exit opened to the check page, while they are open.
 * The page looks a request's source up here: a match means the request came through the exit, so through the
 * tunnel, whatever the request itself claims.
 */
export class ExitSockets {
  private readonly open = new Set<string>();

  /** Records `socket` (connected) until it closes. */
  add(socket: Socket): void {
    const key = ExitSockets.key(socket.localAddress, socket.localPort);
    if (!key) return;
    this.open.add(key);
    socket.once('close', () => this.open.delete(key));
  }

  /** Whether the exit has an open connection from `address`:`port`. */
  has(address: string | undefined, port: number | undefined): boolean {
    const key = ExitSockets.key(address, port);
    return key !== undefined && this.open.has(key);
  }

  get size(): number {
    return this.open.size;
  }

  private static key(address: string | undefined, port: number | undefined): string | undefined {
    return address && port ? `${address}|${port}` : undefined;
  }
}

export interface CheckPageDialerOptions {
  /** The exit's own dialer (DNS, policy, TCP): every stream not for the check page goes there unchanged. */
  policyDialer: TcpStreamDialer;
  /** Where the check page listens on this machine. */
  address: string;
  port: number;
  /** Where the connections opened to the page are recorded, for the page to recognise them. */
  exitSockets: ExitSockets;
  /** Default CHECK_PAGE_NAME. */
  name?: string;
  connectTimeoutMs?: number;
}

/**
 * The embedded exit's TCP dialer in `npm start`: `check.underpass.test` at the page's port is the check page
 * on this machine; every other stream goes to the exit's own dialer and its policy, which stays default-deny
 * for every local address. The page is reachable by that name and port only: the name at another port is
 * refused (`policy-denied`), and the page's address itself, or any other name for it, meets the policy as
 * before. An allow entry for the page's address would have opened every port of it to the tunnel.
 */
export class CheckPageDialer implements TcpStreamDialer {
  private readonly name: string;

  constructor(private readonly options: CheckPageDialerOptions) {
    this.name = (options.name ?? CHECK_PAGE_NAME).toLowerCase();
  }

  dial(request: TcpRequest): Promise<ByteStream> {
    // Names are case-insensitive, and a trailing dot names the same host.
    const host = request.host.toLowerCase().replace(/\.$/, '');
    if (host !== this.name) return this.options.policyDialer.dial(request);
    if (request.port !== this.options.port) {
      return Promise.reject(
        new StreamError('policy-denied', `${this.name} is served on port ${this.options.port} only`),
      );
    }
    return this.connect();
  }

  private async connect(): Promise<ByteStream> {
    const { address, port } = this.options;
    const socket = connect({ host: address, port, allowHalfOpen: true });
    const connected = new Promise<Socket>((resolve, reject) => {
      socket.once('connect', () => resolve(socket));
      socket.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          new StreamError(
            error.code === 'ECONNREFUSED' ? 'refused' : 'unreachable',
            `check page: ${error.code ?? error.message}`,
          ),
        ),
      );
    });
    try {
      await withDeadline(connected, {
        ms: this.options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
        onTimeout: () => new StreamError('timeout', 'check page: connect timed out'),
      });
    } catch (error) {
      socket.destroy();
      throw error;
    }
    // Recorded before a byte is sent: the page judges a request only once it arrives, after this.
    this.options.exitSockets.add(socket);
    socket.pause();
    socket.setNoDelay(true);
    return new NodeSocketStream(socket);
  }
}
