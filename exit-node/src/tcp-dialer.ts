import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, connect, type Socket } from 'node:net';
import { withDeadline } from '@underpass/shared/deadline';
import { errorMessage, StreamError, type StreamErrorCode } from '@underpass/shared/errors';
import { type ExitPolicy } from '@underpass/shared/exit';
import { NodeSocketStream, type ByteStream } from '@underpass/shared/streams';
import type { TcpStreamDialer } from './stream-router.js';
import { MAX_DATA_PAYLOAD, type TcpRequest } from '@underpass/shared/tunnel';

/** Time for one TCP connect; the exit's dial timeout (DNS and every address tried) bounds the whole. */
export const DEFAULT_TCP_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Reads shorter than this are copied out of their read buffer, so that a small chunk waiting in a stream's
 * queue holds its own bytes and not a whole frame-sized buffer.
 */
const COPY_READS_BELOW = MAX_DATA_PAYLOAD / 2;

export type Lookup = (host: string) => Promise<{ address: string; family: number }[]>;

export interface TcpDialerOptions {
  policy: ExitPolicy;
  /** Local address outgoing sockets bind to (the exit's public address, or 127.0.0.3 in tests). */
  bindAddress?: string;
  connectTimeoutMs?: number;
  /** Injected so tests can make a name resolve to a forbidden address. */
  lookup?: Lookup;
}

/**
 * Opens the exit's outside TCP connections. DNS happens here, at the exit, and the policy is applied to the
 * address actually dialed — a name that resolves to a private address is refused (no DNS rebinding).
 * `tcp` streams only: the StreamRouter sends it nothing else.
 */
export class TcpDialer implements TcpStreamDialer {
  private readonly lookup: Lookup;

  constructor(private readonly options: TcpDialerOptions) {
    this.lookup = options.lookup ?? ((host) => dnsLookup(host, { all: true, verbatim: true }));
  }

  async dial(request: TcpRequest): Promise<ByteStream> {
    const { policy } = this.options;
    const portDecision = policy.checkPort(request.port);
    if (!portDecision.allowed) throw new StreamError('policy-denied', portDecision.reason);
    const candidates = await this.resolve(request.host);
    // The policy judges every address the name resolved to, and only an allowed one is ever dialed.
    const allowed = candidates.filter((address) => policy.checkAddress(address).allowed);
    if (allowed.length === 0) {
      const first = policy.checkAddress(candidates[0] ?? '');
      throw new StreamError('policy-denied', `${request.host}: ${first.allowed ? 'denied' : first.reason}`);
    }
    const bindFamily = this.options.bindAddress ? isIP(this.options.bindAddress) : 0;
    const usable = allowed.filter((address) => !bindFamily || isIP(address) === bindFamily);
    if (usable.length === 0) {
      throw new StreamError('unreachable', `${request.host}: no address of the exit's family`);
    }
    // Try the allowed addresses in resolver order; the first that answers wins.
    let lastError: StreamError | undefined;
    for (const address of usable) {
      try {
        return new NodeSocketStream(await this.connect(address, request.port));
      } catch (error) {
        lastError =
          error instanceof StreamError ? error : new StreamError('unreachable', errorMessage(error));
        if (lastError.code === 'timeout') break;
      }
    }
    throw lastError ?? new StreamError('unreachable');
  }

  private async resolve(host: string): Promise<string[]> {
    if (isIP(host)) return [host];
    const bracketed = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : undefined;
    if (bracketed && isIP(bracketed) === 6) return [bracketed];
    try {
      const results = await this.lookup(host);
      if (results.length === 0) throw new StreamError('dns-failed', `${host} has no address`);
      return results.map((r) => r.address);
    } catch (error) {
      if (error instanceof StreamError) throw error;
      throw new StreamError(
        'dns-failed',
        `${host}: ${(error as NodeJS.ErrnoException).code ?? 'lookup failed'}`,
      );
    }
  }

  private connect(address: string, port: number): Promise<Socket> {
    const socket = connect({
      host: address,
      port,
      allowHalfOpen: true,
      // Reads of one DATA frame's payload at most, where Node reads 64 KiB: a busy download then goes out in
      // full frames, not a 60 KiB frame and a 4 KiB tail per read, and every DataChannel message costs each hop
      // (bench/tunnel/README.md). `onread` replaces the socket's 'data' events, so they are emitted here as
      // the socket would; pause() and resume() stop and start reading as before.
      onread: {
        buffer: () => Buffer.allocUnsafe(MAX_DATA_PAYLOAD),
        callback: (bytes: number, buffer: Uint8Array) => {
          const read = buffer.subarray(0, bytes);
          socket.emit('data', bytes < COPY_READS_BELOW ? Buffer.from(read) : read);
          return true; // false would pause; NodeSocketStream pauses and resumes through the socket
        },
      },
      ...(this.options.bindAddress ? { localAddress: this.options.bindAddress } : {}),
    });
    const connected = new Promise<Socket>((resolve, reject) => {
      socket.once('connect', () => {
        socket.pause();
        socket.setNoDelay(true);
        resolve(socket);
      });
      socket.once('error', (error: NodeJS.ErrnoException) =>
        reject(new StreamError(errorCodeFor(error.code), error.code ?? error.message)),
      );
    });
    return withDeadline(connected, {
      ms: this.options.connectTimeoutMs ?? DEFAULT_TCP_CONNECT_TIMEOUT_MS,
      onTimeout: () => new StreamError('timeout', `connect to port ${port} timed out`),
    }).catch((error: unknown) => {
      // Failed or too slow: the half-open socket is not ours to leave behind.
      socket.destroy();
      throw error;
    });
  }
}

function errorCodeFor(code: string | undefined): StreamErrorCode {
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ETIMEDOUT':
      return 'timeout';
    default:
      return 'unreachable';
  }
}
