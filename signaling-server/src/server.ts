/**
 * The signaling server: one HTTP server that upgrades WebSockets for the broker and answers a few JSON
 * endpoints (/healthz, /v1/exits). This file owns everything about sockets: framing, size caps, the hello
 * handshake and its timeout, rate limits, error budgets, liveness, backpressure and shutdown. The protocol
 * decisions are the broker's.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import {
  issueExitKeyChallenge,
  verifyExitKeyProof,
  type IssuedChallenge,
} from '../../shared/src/signaling/exit-proof.js';
import { decodeExitKey, randomId } from '../../shared/src/signaling/ids.js';
import {
  encodeMessage,
  parsePeerMessage,
  type HelloMessage,
  type PeerRole,
  type PeerMessage,
  type ServerMessage,
  type SignalingErrorCode,
} from '../../shared/src/signaling/messages.js';
import { Broker } from './broker.js';
import { resolveLimits, type SignalingLimits } from './limits.js';
import { silentLogger, type SignalingLogger } from './logger.js';
import { SignalingMetrics, type RejectionReason } from './metrics.js';
import { RedisCluster } from './redis-cluster.js';
import { MemoryRegistry, type Registry } from './registry.js';
import { TokenBucket } from './token-bucket.js';

export type SignalingServerOptions = {
  /** TCP port; 0 picks a free one (see the returned `port`). */
  port: number;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  limits?: Partial<SignalingLimits>;
  logger?: SignalingLogger;
  /** Default: a fresh MemoryRegistry (or the Redis one, with `redis`). */
  registry?: Registry;
  /**
   * Serve one network with other instances through Redis: shared registry, cross-instance signal routing
   * and instance expiry. Excludes `registry`.
   */
  redis?: { url: string; expiryMs?: number; prefix?: string };
  /** Clock for the rate limiter and the idle timeout. Default Date.now. */
  now?: () => number;
  /** Write peers' IP addresses into the logs (connection and refusal lines). Default false. */
  logAddresses?: boolean;
};

export type SignalingServer = {
  /** ws:// URL peers connect to. */
  url: string;
  port: number;
  /** The Prometheus metrics also served on GET /metrics. */
  metrics: SignalingMetrics;
  /** Stops accepting, tells every peer `shutting-down`, and resolves once all sockets are gone. */
  close(): Promise<void>;
};

const CLOSE_GOING_AWAY = 1001;
const CLOSE_POLICY = 1008;
const CLOSE_TRY_LATER = 1013;

type Connection = {
  readonly peerId: string;
  readonly ws: WebSocket;
  readonly bucket: TokenBucket;
  readonly address: string;
  /**
   * 'proving': an exit said hello and owes the answer to `challenge`. 'joining' once a hello is being
   * processed, so a second message does not start a second join.
   */
  state: 'handshake' | 'proving' | 'joining' | 'joined' | 'closing';
  challenge: { issued: IssuedChallenge; hello: HelloMessage } | undefined;
  /** When the peer last sent a message, for the idle timeout. */
  lastSeen: number;
  /** Set once joined, for the peers-by-role gauge. */
  role: PeerRole | undefined;
  errors: number;
  queued: number;
  chain: Promise<void>;
  alive: boolean;
  handshakeTimer: ReturnType<typeof setTimeout> | undefined;
};

export async function startSignalingServer(options: SignalingServerOptions): Promise<SignalingServer> {
  const limits = resolveLimits(options.limits);
  const host = options.host ?? '127.0.0.1';
  const logger = options.logger ?? silentLogger;
  const now = options.now ?? Date.now;
  if (options.redis && options.registry) throw new RangeError('pass either a registry or redis, not both');
  const cluster = options.redis ? await RedisCluster.connect({ ...options.redis, logger }) : undefined;
  const connections = new Map<string, Connection>();
  const perAddress = new Map<string, number>();
  let shuttingDown = false;

  /** Every frame to a peer goes through here, errors included: each one is subject to the buffer bound. */
  const write = (conn: Connection, text: string): void => {
    if (conn.ws.readyState !== WebSocket.OPEN) return;
    // A peer that does not read its socket must not make us buffer without bound.
    if (conn.ws.bufferedAmount > limits.maxBufferedBytes) {
      logger.warn({ peerId: conn.peerId }, 'peer does not read its messages; dropping it');
      metrics.rejected('slow-reader');
      conn.ws.terminate();
      return;
    }
    conn.ws.send(text);
  };

  /** Writes an encoded message to a peer connected here. */
  const deliver = (peerId: string, text: string): void => {
    const conn = connections.get(peerId);
    if (conn) write(conn, text);
  };

  const send = (peerId: string, msg: ServerMessage): void => {
    const text = encodeMessage(msg);
    if (connections.has(peerId) || !cluster?.forward(peerId, text)) deliver(peerId, text);
  };

  const metrics = new SignalingMetrics({
    connections: () => connections.size,
    waitingRequests: () => broker.waitingRequests,
  });
  const where = (address: string): Record<string, unknown> => (options.logAddresses ? { address } : {});

  const broker: Broker = new Broker({
    registry: cluster?.registry ?? options.registry ?? new MemoryRegistry(),
    send,
    maxLinksPerClient: limits.maxLinksPerClient,
    matchWaitMs: limits.matchWaitMs,
    maxWaitingRequests: limits.maxWaitingRequests,
    // resolveLimits keeps the idle timeout ≥ 1 s; the max() only guards the protocol's ≥ 1 rule regardless.
    heartbeatMs: Math.max(1, Math.floor(limits.idleTimeoutMs / 3)),
    logger,
    observer: metrics,
    onCapacityFreed: cluster ? () => cluster.announceCapacity() : undefined,
  });
  await cluster?.start({
    deliver,
    capacity: () => broker.capacityFreed(),
    reap: (peerId) => broker.leave(peerId),
    lost: () => {
      for (const conn of connections.values()) {
        sendError(conn, 'unavailable', 'this server lost its registration; reconnect');
        closeConnection(conn, CLOSE_TRY_LATER, 'reconnect');
      }
    },
  });

  const sendError = (
    conn: Connection,
    code: SignalingErrorCode,
    message: string,
    requestId?: string,
  ): void => {
    const msg: ServerMessage = { type: 'error', code, message };
    if (requestId !== undefined) msg.requestId = requestId;
    write(conn, encodeMessage(msg));
  };

  /** Closes a connection for `why` (counted in the rejections metric unless it is an ordinary close). */
  const closeConnection = (conn: Connection, code: number, reason: string, why?: RejectionReason): void => {
    if (conn.state === 'closing') return;
    if (why) metrics.rejected(why);
    conn.state = 'closing';
    conn.ws.close(code, reason);
  };

  /** Answers a protocol error; too many of them and the connection is closed. */
  const strike = (conn: Connection, code: SignalingErrorCode, message: string, requestId?: string): void => {
    sendError(conn, code, message, requestId);
    metrics.rejected(rejectionOf(code));
    conn.errors++;
    if (conn.errors >= limits.maxErrors) {
      logger.info({ peerId: conn.peerId, errors: conn.errors }, 'closing a connection after repeated errors');
      closeConnection(conn, CLOSE_POLICY, 'too many errors', 'too-many-errors');
    }
  };

  /** Runs a connection's work in arrival order, even when the registry is asynchronous. */
  const enqueue = (conn: Connection, work: () => Promise<void>): void => {
    if (conn.queued >= limits.maxQueuedMessages) {
      logger.warn({ peerId: conn.peerId }, 'message queue full; closing the connection');
      closeConnection(conn, CLOSE_POLICY, 'too many queued messages', 'queue-full');
      return;
    }
    conn.queued++;
    conn.chain = conn.chain
      .then(work)
      .catch((error: unknown) => {
        logger.error({ peerId: conn.peerId, err: String(error) }, 'error while handling a message');
      })
      .finally(() => {
        conn.queued--;
      });
  };

  const onMessage = (conn: Connection, data: RawData, isBinary: boolean): void => {
    conn.alive = true;
    if (conn.state === 'closing') return;
    conn.lastSeen = now();
    const beforeHello = conn.state === 'handshake';
    if (!conn.bucket.take()) return strike(conn, 'rate-limited', 'too many messages; slow down');
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength;
    let failure: { code: SignalingErrorCode; message: string; requestId?: string } | undefined;
    let msg: PeerMessage | undefined;
    if (isBinary) failure = { code: 'malformed', message: 'binary frames are not part of the protocol' };
    else if (size > limits.maxMessageBytes)
      failure = { code: 'too-large', message: `message larger than ${limits.maxMessageBytes} bytes` };
    else {
      const bytes = Buffer.isBuffer(data)
        ? data
        : Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.from(data);
      const text = bytes.toString('utf8');
      const decoded = parsePeerMessage(text);
      if (decoded.ok) msg = decoded.msg;
      else failure = decoded;
    }
    if (failure) {
      strike(conn, failure.code, failure.message, failure.requestId);
      if (beforeHello || conn.state === 'proving' || failure.code === 'unsupported-version')
        closeConnection(conn, CLOSE_POLICY, failure.code);
      return;
    }
    if (!msg) return;
    if (beforeHello) {
      if (msg.type !== 'hello') {
        sendError(conn, 'not-allowed', 'the first message must be hello');
        closeConnection(conn, CLOSE_POLICY, 'no hello', 'no-hello');
        return;
      }
      if (msg.role === 'exit') {
        // Nobody may announce an exit key without holding its secret half; the handshake timer keeps running.
        const issued = issueExitKeyChallenge();
        conn.challenge = { issued, hello: msg };
        conn.state = 'proving';
        write(conn, encodeMessage({ type: 'challenge', ...issued.challenge }));
        return;
      }
      join(conn, msg);
      return;
    }
    if (conn.state === 'proving') {
      const pending = conn.challenge;
      conn.challenge = undefined;
      const exitKey = pending?.hello.exitKey === undefined ? undefined : decodeExitKey(pending.hello.exitKey);
      if (msg.type !== 'prove' || !pending || !exitKey) {
        sendError(conn, 'not-allowed', 'an exit must answer the challenge with prove');
        closeConnection(conn, CLOSE_POLICY, 'no proof', 'bad-proof');
        return;
      }
      if (!verifyExitKeyProof(pending.issued, exitKey, msg.proof)) {
        logger.info({ peerId: conn.peerId, ...where(conn.address) }, 'an exit failed to prove its key');
        sendError(conn, 'not-allowed', 'the proof does not match the announced exitKey');
        closeConnection(conn, CLOSE_POLICY, 'bad proof', 'bad-proof');
        return;
      }
      join(conn, pending.hello);
      return;
    }
    // Messages pipelined behind a hello wait in the queue until the join is done.
    const peerMessage = msg;
    enqueue(conn, async () => {
      if (conn.state !== 'joined') return;
      let outcome;
      try {
        outcome = await broker.handle(conn.peerId, peerMessage);
      } catch (error) {
        logger.error({ peerId: conn.peerId, err: String(error) }, 'error while handling a message');
        const requestId = 'requestId' in peerMessage ? peerMessage.requestId : undefined;
        sendError(conn, 'unavailable', 'the server cannot serve this now; retry later', requestId);
        return;
      }
      if (outcome === 'violation') {
        // The broker already answered `not-allowed`; the count and the error budget are ours.
        metrics.rejected('not-allowed');
        conn.errors++;
        if (conn.errors >= limits.maxErrors)
          closeConnection(conn, CLOSE_POLICY, 'too many errors', 'too-many-errors');
      }
    });
  };

  const join = (conn: Connection, hello: HelloMessage): void => {
    conn.state = 'joining';
    clearTimeout(conn.handshakeTimer);
    enqueue(conn, async () => {
      let result;
      try {
        result = await broker.join(conn.peerId, hello);
      } catch (error) {
        logger.error({ peerId: conn.peerId, err: String(error) }, 'cannot register a peer');
        sendError(conn, 'unavailable', 'the server cannot register peers now; retry later');
        closeConnection(conn, CLOSE_TRY_LATER, 'unavailable');
        return;
      }
      if (conn.state !== 'joining') {
        // The socket went away while joining; the close handler's leave is queued behind us.
        return;
      }
      if (result.ok) {
        conn.state = 'joined';
        conn.role = hello.role;
        metrics.peerJoined(hello.role);
        return;
      }
      sendError(conn, result.code, result.message);
      closeConnection(conn, CLOSE_POLICY, result.code, result.reason);
    });
  };

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxFrameBytes,
    perMessageDeflate: false,
  });

  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    if (shuttingDown) {
      ws.close(CLOSE_GOING_AWAY, 'shutting down');
      return;
    }
    if (connections.size >= limits.maxPeers) {
      ws.send(
        encodeMessage({ type: 'error', code: 'rate-limited', message: 'server is full; try again later' }),
      );
      ws.close(CLOSE_TRY_LATER, 'server full');
      metrics.rejected('server-full');
      return;
    }
    const address = req.socket.remoteAddress ?? 'unknown';
    const fromAddress = perAddress.get(address) ?? 0;
    if (fromAddress >= limits.maxConnectionsPerAddress) {
      ws.send(
        encodeMessage({
          type: 'error',
          code: 'rate-limited',
          message: `at most ${limits.maxConnectionsPerAddress} connections per address`,
        }),
      );
      ws.close(CLOSE_TRY_LATER, 'too many connections from this address');
      metrics.rejected('per-address');
      logger.info(where(address), 'too many connections from one address');
      return;
    }
    perAddress.set(address, fromAddress + 1);
    const conn: Connection = {
      peerId: cluster ? cluster.newPeerId() : randomId(),
      ws,
      address,
      challenge: undefined,
      lastSeen: now(),
      role: undefined,
      bucket: new TokenBucket(limits.messagesPerSecond, limits.messageBurst, now),
      state: 'handshake',
      errors: 0,
      queued: 0,
      chain: Promise.resolve(),
      alive: true,
      handshakeTimer: undefined,
    };
    connections.set(conn.peerId, conn);
    logger.debug({ peerId: conn.peerId, ...where(address) }, 'connection');
    conn.handshakeTimer = setTimeout(() => {
      if (conn.state !== 'handshake' && conn.state !== 'proving') return;
      sendError(conn, 'timeout', `say hello (and prove an exit key) within ${limits.handshakeTimeoutMs} ms`);
      closeConnection(conn, CLOSE_POLICY, 'handshake timeout', 'handshake-timeout');
    }, limits.handshakeTimeoutMs);

    ws.on('message', (data, isBinary) => onMessage(conn, data, isBinary));
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('error', (error) => {
      logger.debug({ peerId: conn.peerId, err: error.message }, 'websocket error');
    });
    ws.on('close', () => {
      clearTimeout(conn.handshakeTimer);
      conn.state = 'closing';
      conn.challenge = undefined;
      if (conn.role) metrics.peerLeft(conn.role);
      conn.role = undefined;
      const left = (perAddress.get(conn.address) ?? 1) - 1;
      if (left <= 0) perAddress.delete(conn.address);
      else perAddress.set(conn.address, left);
      // Queued after any join in flight, so a peer is never left registered behind a dead socket. Leaving
      // is unconditional: the state says nothing about registration once the server itself began a close.
      conn.chain = conn.chain
        .then(() => broker.leave(conn.peerId))
        .catch((error: unknown) => {
          logger.error({ peerId: conn.peerId, err: String(error) }, 'error while removing a peer');
        })
        .finally(() => {
          connections.delete(conn.peerId);
          maybeDrained();
        });
    });
  });

  // Each connection is pinged once per interval, but the pings are spread over the interval in slices: a
  // ping is a syscall, and ten thousand at once would stall every match in flight.
  const PING_SLICES = 100;
  let pingRound: Connection[] = [];
  let pingCursor = 0;
  let roundStarted = -Infinity;
  const pinger = setInterval(
    () => {
      if (pingCursor >= pingRound.length) {
        // A round that ended early (fewer connections than slices) waits out its interval: otherwise a few
        // peers would be pinged, and dropped for a late pong, every interval / PING_SLICES.
        if (performance.now() - roundStarted < limits.pingIntervalMs) return;
        roundStarted = performance.now();
        pingRound = [...connections.values()];
        pingCursor = 0;
      }
      const end = Math.min(pingRound.length, pingCursor + Math.ceil(pingRound.length / PING_SLICES));
      for (; pingCursor < end; pingCursor++) {
        const conn = pingRound[pingCursor]!;
        if (conn.ws.readyState !== WebSocket.OPEN) continue;
        if (!conn.alive) {
          logger.info({ peerId: conn.peerId }, 'peer stopped answering pings; dropping it');
          metrics.rejected('ping-timeout');
          conn.ws.terminate();
          continue;
        }
        conn.alive = false;
        conn.ws.ping();
      }
    },
    Math.max(1, Math.floor(limits.pingIntervalMs / PING_SLICES)),
  );
  pinger.unref();

  // One sweep over all connections rather than a timer per connection: cheap with ten thousand peers.
  const idleSweep = setInterval(
    () => {
      const cutoff = now() - limits.idleTimeoutMs;
      for (const conn of connections.values()) {
        if (conn.state !== 'joined' || conn.lastSeen >= cutoff) continue;
        sendError(conn, 'timeout', `nothing received for ${limits.idleTimeoutMs} ms; send heartbeats`);
        closeConnection(conn, CLOSE_POLICY, 'idle', 'idle-timeout');
      }
    },
    Math.min(5_000, Math.max(50, Math.floor(limits.idleTimeoutMs / 4))),
  );
  idleSweep.unref();

  const json = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      'access-control-allow-origin': '*',
    });
    res.end(res.req.method === 'HEAD' ? undefined : text);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      return json(res, 404, { error: 'not-found' });
    }
    const readable = req.method === 'GET' || req.method === 'HEAD';
    if (readable && pathname === '/healthz') {
      if (shuttingDown) return json(res, 503, { ok: false });
      return json(res, 200, { ok: true });
    }
    if (readable && pathname === '/metrics') {
      metrics.text().then(
        (text) => {
          res.writeHead(200, {
            'content-type': metrics.contentType,
            'content-length': Buffer.byteLength(text),
            'cache-control': 'no-store',
          });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (error: unknown) => {
          logger.error({ err: String(error) }, 'cannot collect metrics');
          json(res, 500, { error: 'internal' });
        },
      );
      return;
    }
    if (readable && pathname === '/v1/exits') {
      broker.listExits().then(
        (exits) => json(res, 200, { exits }),
        (error: unknown) => {
          logger.error({ err: String(error) }, 'cannot list exits');
          json(res, 500, { error: 'internal' });
        },
      );
      return;
    }
    json(res, 404, { error: 'not-found' });
  };

  const httpServer = createServer(onRequest);
  httpServer.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (shuttingDown) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  httpServer.on('clientError', (_error, socket) => socket.destroy());

  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(options.port, host, () => {
        httpServer.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    clearInterval(pinger);
    clearInterval(idleSweep);
    await cluster?.close();
    throw error;
  }
  const address = httpServer.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  logger.info({ host, port }, 'signaling server listening');

  let drained: (() => void) | undefined;
  function maybeDrained(): void {
    if (drained && connections.size === 0) drained();
  }

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      shuttingDown = true;
      clearInterval(pinger);
      clearInterval(idleSweep);
      broker.stop();
      const httpClosed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      httpServer.closeIdleConnections();
      for (const conn of connections.values()) {
        clearTimeout(conn.handshakeTimer);
        sendError(conn, 'shutting-down', 'the signaling server is shutting down; reconnect later');
        closeConnection(conn, CLOSE_GOING_AWAY, 'shutting down');
      }
      if (connections.size > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, limits.shutdownGraceMs);
          drained = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      for (const conn of connections.values()) conn.ws.terminate();
      wss.close();
      httpServer.closeAllConnections();
      await httpClosed;
      await cluster?.close();
      logger.info({}, 'signaling server stopped');
    })();
    return closing;
  };

  return { url: `ws://${urlHost}:${port}/`, port, metrics, close };
}

function rejectionOf(code: SignalingErrorCode): RejectionReason {
  switch (code) {
    case 'rate-limited':
    case 'too-large':
    case 'malformed':
    case 'unsupported-version':
      return code;
    default:
      return 'not-allowed';
  }
}
