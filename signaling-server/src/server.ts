/**
 * The signaling server: one HTTP server that upgrades WebSockets for the broker and answers a few JSON
 * endpoints (/healthz, /v1/exits). This file owns everything about sockets: framing, size caps, the hello
 * handshake and its timeout, rate limits, error budgets, liveness, backpressure and shutdown. The protocol
 * decisions are the broker's.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { randomId } from '../../shared/src/signaling/ids.js';
import {
  encodeMessage,
  parsePeerMessage,
  type PeerMessage,
  type ServerMessage,
  type SignalingErrorCode,
} from '../../shared/src/signaling/messages.js';
import { Broker } from './broker.js';
import { resolveLimits, type SignalingLimits } from './limits.js';
import { silentLogger, type SignalingLogger } from './logger.js';
import { MemoryRegistry, type Registry } from './registry.js';
import { TokenBucket } from './token-bucket.js';

export type SignalingServerOptions = {
  /** TCP port; 0 picks a free one (see the returned `port`). */
  port: number;
  /** Interface to listen on. Default 127.0.0.1. */
  host?: string;
  limits?: Partial<SignalingLimits>;
  logger?: SignalingLogger;
  /** Default: a fresh MemoryRegistry. */
  registry?: Registry;
  /** Clock for the rate limiter. Default Date.now. */
  now?: () => number;
};

export type SignalingServer = {
  /** ws:// URL peers connect to. */
  url: string;
  port: number;
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
  /** 'joining' once a hello is being processed, so a second message does not start a second join. */
  state: 'handshake' | 'joining' | 'joined' | 'closing';
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
  const connections = new Map<string, Connection>();
  let shuttingDown = false;

  const send = (peerId: string, msg: ServerMessage): void => {
    const conn = connections.get(peerId);
    if (!conn || conn.ws.readyState !== WebSocket.OPEN) return;
    // A peer that does not read its socket must not make us buffer without bound.
    if (conn.ws.bufferedAmount > limits.maxBufferedBytes) {
      logger.warn({ peerId }, 'peer does not read its messages; dropping it');
      conn.ws.terminate();
      return;
    }
    conn.ws.send(encodeMessage(msg));
  };

  const broker = new Broker({
    registry: options.registry ?? new MemoryRegistry(),
    send,
    maxLinksPerClient: limits.maxLinksPerClient,
    logger,
  });

  const sendError = (
    conn: Connection,
    code: SignalingErrorCode,
    message: string,
    requestId?: string,
  ): void => {
    const msg: ServerMessage = { type: 'error', code, message };
    if (requestId !== undefined) msg.requestId = requestId;
    if (conn.ws.readyState === WebSocket.OPEN) conn.ws.send(encodeMessage(msg));
  };

  const closeConnection = (conn: Connection, code: number, reason: string): void => {
    if (conn.state === 'closing') return;
    conn.state = 'closing';
    conn.ws.close(code, reason);
  };

  /** Answers a protocol error; too many of them and the connection is closed. */
  const strike = (conn: Connection, code: SignalingErrorCode, message: string, requestId?: string): void => {
    sendError(conn, code, message, requestId);
    conn.errors++;
    if (conn.errors >= limits.maxErrors) {
      logger.info({ peerId: conn.peerId, errors: conn.errors }, 'closing a connection after repeated errors');
      closeConnection(conn, CLOSE_POLICY, 'too many errors');
    }
  };

  /** Runs a connection's work in arrival order, even when the registry is asynchronous. */
  const enqueue = (conn: Connection, work: () => Promise<void>): void => {
    if (conn.queued >= limits.maxQueuedMessages) {
      logger.warn({ peerId: conn.peerId }, 'message queue full; closing the connection');
      closeConnection(conn, CLOSE_POLICY, 'too many queued messages');
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
      if (beforeHello || failure.code === 'unsupported-version')
        closeConnection(conn, CLOSE_POLICY, failure.code);
      return;
    }
    if (!msg) return;
    if (beforeHello) {
      if (msg.type !== 'hello') {
        sendError(conn, 'not-allowed', 'the first message must be hello');
        closeConnection(conn, CLOSE_POLICY, 'no hello');
        return;
      }
      const hello = msg;
      conn.state = 'joining';
      clearTimeout(conn.handshakeTimer);
      enqueue(conn, async () => {
        const result = await broker.join(conn.peerId, hello);
        if (conn.state !== 'joining') {
          // The socket went away while joining; the close handler's leave is queued behind us.
          return;
        }
        if (result.ok) {
          conn.state = 'joined';
          return;
        }
        sendError(conn, result.code, result.message);
        closeConnection(conn, CLOSE_POLICY, result.code);
      });
      return;
    }
    // Messages pipelined behind a hello wait in the queue until the join is done.
    const peerMessage = msg;
    enqueue(conn, async () => {
      if (conn.state !== 'joined') return;
      const outcome = await broker.handle(conn.peerId, peerMessage);
      if (outcome === 'violation') {
        conn.errors++;
        if (conn.errors >= limits.maxErrors) closeConnection(conn, CLOSE_POLICY, 'too many errors');
      }
    });
  };

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxFrameBytes,
    perMessageDeflate: false,
  });

  wss.on('connection', (ws: WebSocket) => {
    if (shuttingDown) {
      ws.close(CLOSE_GOING_AWAY, 'shutting down');
      return;
    }
    if (connections.size >= limits.maxPeers) {
      ws.send(
        encodeMessage({ type: 'error', code: 'rate-limited', message: 'server is full; try again later' }),
      );
      ws.close(CLOSE_TRY_LATER, 'server full');
      return;
    }
    const conn: Connection = {
      peerId: randomId(),
      ws,
      bucket: new TokenBucket(limits.messagesPerSecond, limits.messageBurst, now),
      state: 'handshake',
      errors: 0,
      queued: 0,
      chain: Promise.resolve(),
      alive: true,
      handshakeTimer: undefined,
    };
    connections.set(conn.peerId, conn);
    conn.handshakeTimer = setTimeout(() => {
      if (conn.state !== 'handshake') return;
      sendError(conn, 'not-allowed', `say hello within ${limits.handshakeTimeoutMs} ms`);
      closeConnection(conn, CLOSE_POLICY, 'handshake timeout');
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

  const pinger = setInterval(() => {
    for (const conn of connections.values()) {
      if (!conn.alive) {
        logger.info({ peerId: conn.peerId }, 'peer stopped answering pings; dropping it');
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      if (conn.ws.readyState === WebSocket.OPEN) conn.ws.ping();
    }
  }, limits.pingIntervalMs);
  pinger.unref();

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

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port, host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
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
      logger.info({}, 'signaling server stopped');
    })();
    return closing;
  };

  return { url: `ws://${urlHost}:${port}/`, port, close };
}
