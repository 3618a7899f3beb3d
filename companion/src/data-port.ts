import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { NoTunnelError } from './socks-server.js';
import { UnauthenticatedConnections } from './unauthenticated-connections.js';
import { systemClock, type Clock } from '@underpass/shared/clock';
import {
  DATA_PORT_MAX_MESSAGE_BYTES,
  DataPortCloseCode,
  muxOverLink,
  parseDataPortHello,
  type CreateMux,
} from '@underpass/shared/data-port';
import { withDeadline } from '@underpass/shared/deadline';
import { Emitter } from '@underpass/shared/emitter';
import { UnderpassError } from '@underpass/shared/errors';
import { WebSocketLink } from '@underpass/shared/links';
import { type ByteStream } from '@underpass/shared/streams';
import { type Mux, type StreamRequest } from '@underpass/shared/tunnel';

/**
 * The localhost WebSocket that the extension's offscreen document connects to; its binary messages are the
 * frames of one stream multiplexer, which the companion drives as initiator (one stream per SOCKS CONNECT).
 * The framing (WebSocketLink, muxOverLink) and the protocol (close codes, hello) are shared/src's, the same
 * the extension runs on its end; what is here is the server and its locks.
 *
 * Who may use it: a page on the web can open a WebSocket to 127.0.0.1 too, so two locks. The Origin header
 * (which a page cannot forge) must be the extension's, and the first message must carry the per-run secret
 * that only the extension received, over native messaging or as a pairing code. Until then nothing but the
 * hello is read.
 */

/** From TCP accept to the WebSocket upgrade, and again from the upgrade to the hello; late ones are closed. */
export const DEFAULT_HELLO_TIMEOUT_MS = 5_000;
/** Connections not yet authenticated at once; one more makes the oldest give way (never the newest). */
export const DEFAULT_MAX_PENDING = 16;
/** A half-sent HTTP request is dropped after this. */
export const DEFAULT_HTTP_TIMEOUT_MS = 5_000;
/** Control frames are sent even while congested; past this a stalled reader is cut off. */
export const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

const CHROME_ORIGIN = /^chrome-extension:\/\/[a-p]{32}$/;
const FIREFOX_ORIGIN = /^moz-extension:\/\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface DataPortOptions {
  /** The per-run secret the hello must carry. */
  secret: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /**
   * The extension's origin (`chrome-extension://ID/`) when known: then only it may connect. When unknown
   * (Firefox gives the host an id, not the per-install moz-extension UUID; a hand-started companion) any
   * extension origin may try, and the secret alone decides.
   */
  extensionOrigin?: string;
  helloTimeoutMs?: number;
  maxPending?: number;
  /** Makes the mux for an authenticated connection; tests may inject one. */
  createMux?: CreateMux;
  clock?: Clock;
}

export type DataPortEvents = {
  /** A tunnel connection was authenticated (true) or the authenticated one went away (false). */
  tunnel: [up: boolean];
};

/** One authenticated connection: the socket (to terminate it), its link and the mux over it. */
interface Tunnel {
  ws: WebSocket;
  link: WebSocketLink;
  mux: Mux;
}

export class DataPort extends Emitter<DataPortEvents> {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly secret: Buffer;
  private readonly origin: string | undefined;
  private readonly portOption: number;
  private readonly helloTimeoutMs: number;
  private readonly maxPending: number;
  private readonly createMux: CreateMux | undefined;
  private readonly clock: Clock;
  private readonly pending = new Set<WebSocket>();
  private readonly unauthenticatedSockets: UnauthenticatedConnections;
  private active: Tunnel | undefined;
  private listening = false;

  constructor(options: DataPortOptions) {
    super();
    this.secret = Buffer.from(options.secret, 'utf8');
    this.origin = options.extensionOrigin?.replace(/\/$/, '');
    this.portOption = options.port ?? 0;
    this.helloTimeoutMs = options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS;
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    this.createMux = options.createMux;
    this.clock = options.clock ?? systemClock;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: DATA_PORT_MAX_MESSAGE_BYTES,
      perMessageDeflate: false,
      clientTracking: false,
    });
    this.http = createServer((_request, response) => {
      response.writeHead(426, { Connection: 'close' }).end();
    });
    this.http.headersTimeout = DEFAULT_HTTP_TIMEOUT_MS;
    this.http.requestTimeout = DEFAULT_HTTP_TIMEOUT_MS;
    // No connection cap: it would refuse the newest connection, which is the extension's when idle local
    // sockets hold the cap. Unauthenticated connections are bounded by making the oldest give way instead.
    this.unauthenticatedSockets = new UnauthenticatedConnections({
      max: this.maxPending,
      deadlineMs: this.helloTimeoutMs,
      clock: this.clock,
    });
    this.http.on('connection', (socket: Socket) => this.unauthenticatedSockets.add(socket));
    this.http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.upgrade(request, socket, head),
    );
    this.http.on('clientError', (_error, socket: Duplex) => socket.destroy());
    this.http.on('error', () => {}); // only possible at listen(), which reports it
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.http.once('error', onError);
      this.http.listen({ host: '127.0.0.1', port: this.portOption }, () => {
        this.http.off('error', onError);
        this.listening = true;
        resolve(this.port);
      });
    });
  }

  get port(): number {
    return (this.http.address() as AddressInfo | null)?.port ?? 0;
  }

  /** Connections that have not (yet) authenticated: at most `maxPending`. */
  get unauthenticated(): number {
    return this.unauthenticatedSockets.size;
  }

  get tunnelUp(): boolean {
    return this.active !== undefined;
  }

  /** Opens a stream through the tunnel; rejects with NoTunnelError when no extension is connected. */
  open(request: StreamRequest): Promise<ByteStream> {
    if (!this.active) return Promise.reject(new NoTunnelError());
    return this.active.mux.open(request);
  }

  close(): Promise<void> {
    for (const ws of this.pending) ws.terminate();
    this.pending.clear();
    this.unauthenticatedSockets.closeAll();
    const active = this.active;
    active?.link.closeWith(DataPortCloseCode.goingAway, 'companion closing');
    active?.ws.terminate();
    this.wss.close();
    if (!this.listening) return Promise.resolve();
    this.listening = false;
    return new Promise((resolve) => {
      this.http.close(() => resolve());
      this.http.closeAllConnections();
    });
  }

  private upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    if (!this.hostAllowed(request.headers.host) || !this.originAllowed(request.headers.origin)) {
      refuse(socket, 403, 'Forbidden');
      return;
    }
    this.unauthenticatedSockets.upgraded(socket as Socket);
    this.wss.handleUpgrade(request, socket, head, (ws) => this.authenticate(ws, socket as Socket));
  }

  /** Against DNS rebinding: a page that got its own name to resolve to 127.0.0.1 still sends its own Host. */
  private hostAllowed(host: string | undefined): boolean {
    const port = this.port;
    return host === `127.0.0.1:${port}` || host === `localhost:${port}` || host === `[::1]:${port}`;
  }

  private originAllowed(origin: string | undefined): boolean {
    if (origin === undefined) return false;
    if (this.origin !== undefined) return origin === this.origin;
    return CHROME_ORIGIN.test(origin) || FIREFOX_ORIGIN.test(origin);
  }

  /**
   * The hello is judged the moment it arrives, synchronously, so that any frame right behind it reaches the
   * link; withDeadline bounds the wait for it (and ends with the connection, whichever comes first).
   */
  private authenticate(ws: WebSocket, socket: Socket): void {
    this.pending.add(ws);
    ws.on('error', () => {}); // e.g. an oversized message; the close that follows is handled below
    const settled = new Promise<void>((resolve) => {
      ws.once('close', () => {
        this.pending.delete(ws);
        resolve();
      });
      ws.once('message', (data: RawData, isBinary: boolean) => {
        const valid = !isBinary && this.secretValid(data);
        if (valid) this.unauthenticatedSockets.authenticated(socket);
        this.admit(ws, valid);
        resolve();
      });
    });
    withDeadline(settled, {
      ms: this.helloTimeoutMs,
      onTimeout: () => new UnderpassError('hello-timeout', 'no hello in time'),
      clock: this.clock,
    }).catch(() => this.admit(ws, false, 'no hello in time'));
  }

  private admit(ws: WebSocket, authenticated: boolean, refusal = 'unauthorized'): void {
    this.pending.delete(ws);
    if (ws.readyState !== WebSocket.OPEN) return;
    if (authenticated) this.attach(ws);
    else ws.close(DataPortCloseCode.unauthorized, refusal);
  }

  /** Makes an authenticated connection the tunnel; a previous one is closed as replaced. */
  private attach(ws: WebSocket): void {
    const link = new WebSocketLink(ws, {
      errorCloseCode: DataPortCloseCode.protocol,
      maxBufferedBytes: DEFAULT_MAX_BUFFERED_BYTES,
      clock: this.clock,
    });
    const tunnel: Tunnel = { ws, link, mux: muxOverLink(link, 'initiator', this.createMux) };
    link.on('close', () => {
      if (this.active !== tunnel) return;
      this.active = undefined;
      this.emit('tunnel', false);
    });
    const previous = this.active;
    this.active = tunnel;
    previous?.link.closeWith(DataPortCloseCode.replaced, 'replaced by a newer connection');
    if (!previous) this.emit('tunnel', true);
  }

  private secretValid(data: RawData): boolean {
    const hello = parseDataPortHello(rawToBuffer(data).toString('utf8'));
    if (!hello) return false;
    const given = Buffer.from(hello.secret, 'utf8');
    // The length of the secret is no secret; its bytes are compared without an early exit.
    if (given.length !== this.secret.length) {
      timingSafeEqual(this.secret, this.secret);
      return false;
    }
    return timingSafeEqual(given, this.secret);
  }
}

function rawToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  (socket as Socket).destroySoon?.();
}
