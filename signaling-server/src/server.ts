/**
 * The signaling server: one HTTP server that upgrades WebSockets for the broker and answers a few JSON
 * endpoints (http-routes.ts). This file only wires the parts and moves frames: it admits or turns away
 * sockets (server full, too many from one address), hands each one's frames to its PeerConnection
 * (connection.ts), runs liveness (liveness.ts) and shuts down. What a peer may do is the broker's call.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { systemClock, type Clock } from '@underpass/shared/clock';
import { withDeadline } from '@underpass/shared/deadline';
import { UnderpassError } from '@underpass/shared/errors';
import { silentLogger, type LogFields, type Logger } from '@underpass/shared/logger';
import { randomId } from '@underpass/shared/signaling';
import { encodeMessage, type ServerMessage } from '@underpass/shared/signaling';
import { Broker } from './broker.js';
import { DEFAULT_HOST } from './config.js';
import {
  CLOSE_GOING_AWAY,
  CLOSE_TRY_LATER,
  PeerConnection,
  type ConnectionContext,
  type InboundFrame,
  type PeerSocket,
} from './connection.js';
import { httpRoutes } from './http-routes.js';
import { resolveLimits, type SignalingLimits } from './limits.js';
import { Liveness } from './liveness.js';
import { SignalingMetrics, type RejectionReason } from './metrics.js';
import { RedisCluster } from './redis-cluster.js';
import { MemoryRegistry, type Registry } from './registry.js';
import { TrustedProxies } from './client-address.js';

export type SignalingServerOptions = {
  /** TCP port; 0 picks a free one (see the returned `port`). */
  port: number;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  limits?: Partial<SignalingLimits>;
  logger?: Logger;
  /** Default: a fresh MemoryRegistry (or the Redis one, with `redis`). */
  registry?: Registry;
  /**
   * Serve one network with other instances through Redis: shared registry, cross-instance signal routing
   * and instance expiry. Excludes `registry`.
   */
  redis?: { url: string; expiryMs?: number; prefix?: string };
  /** Time for the rate limiter, the handshake and idle timeouts, liveness and match latencies. */
  clock?: Clock;
  /** Write peers' IP addresses into the logs (connection and refusal lines). Default false. */
  logAddresses?: boolean;
  /**
   * Reverse proxies (addresses or CIDR ranges) whose `Forwarded` / `X-Forwarded-For` headers name the client,
   * for the per-address connection cap; nobody else's headers are read. Default none.
   */
  trustedProxies?: readonly string[];
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

export async function startSignalingServer(options: SignalingServerOptions): Promise<SignalingServer> {
  // Parsed first: a bad entry throws before anything is opened.
  const trustedProxies = options.trustedProxies
    ? TrustedProxies.parse(options.trustedProxies)
    : TrustedProxies.none;
  const limits = resolveLimits(options.limits);
  const host = options.host ?? DEFAULT_HOST;
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const where = (address: string): LogFields => (options.logAddresses ? { address } : {});
  if (options.redis && options.registry) throw new RangeError('pass either a registry or redis, not both');
  const cluster = options.redis ? await RedisCluster.connect({ ...options.redis, logger }) : undefined;
  const connections = new Map<string, PeerConnection>();
  const perAddress = new Map<string, number>();
  let shuttingDown = false;
  let allGone: (() => void) | undefined;

  /** Writes an encoded message to a peer connected here. */
  const deliver = (peerId: string, text: string): void => connections.get(peerId)?.write(text);
  const send = (peerId: string, msg: ServerMessage): void => {
    const text = encodeMessage(msg);
    if (connections.has(peerId) || !cluster?.forward(peerId, text)) deliver(peerId, text);
  };

  const metrics = new SignalingMetrics({
    connections: () => connections.size,
    waitingRequests: () => broker.waitingRequests,
  });
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
    onClaim: (outcome) => metrics.linkClaimed(outcome),
    onReplaced: (peerId) => {
      metrics.exitTakenOver();
      const conn = connections.get(peerId);
      if (conn) conn.replaced();
      else cluster?.tellReplaced(peerId);
    },
    clock,
  });
  await cluster?.start({
    deliver,
    capacity: () => broker.capacityFreed(),
    replaced: (peerId) => connections.get(peerId)?.replaced(),
    // A dead instance's peers most likely lost only their signaling socket: their links stay up.
    reap: (peerId) => broker.leave(peerId, { tellLinkMembers: false }),
    lost: () => {
      for (const conn of connections.values()) conn.registrationLost();
    },
  });
  const context: ConnectionContext = { broker, limits, metrics, logger, clock, where };
  const liveness = new Liveness({
    peers: () => connections.values(),
    pingIntervalMs: limits.pingIntervalMs,
    idleTimeoutMs: limits.idleTimeoutMs,
    clock,
  });

  /** Refuses a socket before it becomes a connection: one `rate-limited` frame, then close 1013. */
  const turnAway = (ws: WebSocket, message: string, reason: string, why: RejectionReason): void => {
    ws.send(encodeMessage({ type: 'error', code: 'rate-limited', message }));
    ws.close(CLOSE_TRY_LATER, reason);
    metrics.rejected(why);
  };

  const accept = (ws: WebSocket, req: IncomingMessage): void => {
    if (shuttingDown) return ws.close(CLOSE_GOING_AWAY, 'shutting down');
    if (connections.size >= limits.maxPeers)
      return turnAway(ws, 'server is full; try again later', 'server full', 'server-full');
    const address = trustedProxies.clientAddress(req.socket.remoteAddress, req.headers);
    const fromAddress = perAddress.get(address) ?? 0;
    if (fromAddress >= limits.maxConnectionsPerAddress) {
      const message = `at most ${limits.maxConnectionsPerAddress} connections per address`;
      turnAway(ws, message, 'too many connections from this address', 'per-address');
      logger.info(where(address), 'too many connections from one address');
      return;
    }
    perAddress.set(address, fromAddress + 1);
    const peerId = cluster ? cluster.newPeerId() : randomId();
    const conn = new PeerConnection(peerId, address, peerSocketOf(ws), context);
    connections.set(peerId, conn);
    logger.debug({ peerId, ...where(address) }, 'connection');
    ws.on('message', (data, isBinary) => conn.receive(frameOf(data, isBinary)));
    ws.on('pong', () => conn.pong());
    ws.on('error', (error) => logger.debug({ peerId, err: error.message }, 'websocket error'));
    ws.on('close', () => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left <= 0) perAddress.delete(address);
      else perAddress.set(address, left);
      void conn.socketClosed().then(() => {
        connections.delete(peerId);
        if (connections.size === 0) allGone?.();
      });
    });
  };

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxFrameBytes,
    perMessageDeflate: false,
  });
  wss.on('connection', accept);
  const httpServer = createServer(
    httpRoutes({ shuttingDown: () => shuttingDown, metrics, listExits: () => broker.listExits(), logger }),
  );
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
    await listen(httpServer, options.port, host);
  } catch (error) {
    await cluster?.close();
    throw error;
  }
  liveness.start();
  const address = httpServer.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  logger.info({ host, port }, 'signaling server listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      shuttingDown = true;
      liveness.stop();
      broker.stop();
      const httpClosed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      httpServer.closeIdleConnections();
      const drained = new Promise<void>((resolve) => (allGone = resolve));
      for (const conn of connections.values()) conn.shutDown();
      if (connections.size > 0) {
        // Peers get the grace to take the `shutting-down` frame; whoever is still there then is cut.
        await withDeadline(drained, {
          ms: limits.shutdownGraceMs,
          onTimeout: () => new UnderpassError('timeout', 'peers still connected after the shutdown grace'),
          clock,
        }).catch(() => logger.debug({ peers: connections.size }, 'peers stayed past the shutdown grace'));
      }
      for (const conn of connections.values()) conn.terminate();
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

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function peerSocketOf(ws: WebSocket): PeerSocket {
  return {
    get open() {
      return ws.readyState === WebSocket.OPEN;
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    send: (text) => ws.send(text),
    close: (code, reason) => ws.close(code, reason),
    terminate: () => ws.terminate(),
    ping: () => ws.ping(),
  };
}

function frameOf(data: RawData, binary: boolean): InboundFrame {
  return {
    binary,
    byteLength: Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength,
    text: () => {
      const bytes = Buffer.isBuffer(data)
        ? data
        : Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.from(data);
      return bytes.toString('utf8');
    },
  };
}
