import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { timingSafeEqual } from 'node:crypto';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import { z } from 'zod';
import { NoTunnelError } from './socks-server.js';
import {
  Emitter,
  Mux,
  SessionError,
  type ByteStream,
  type MuxOptions,
  type StreamRequest,
} from './shared.js';

/**
 * The localhost WebSocket that the extension's offscreen document connects to; its binary messages are the
 * frames of one stream multiplexer, which the companion drives as initiator (one stream per SOCKS CONNECT).
 *
 * Who may use it: a page on the web can open a WebSocket to 127.0.0.1 too, so two locks. The Origin header
 * (which a page cannot forge) must be the extension's, and the first message must carry the per-run secret
 * that only the extension received, over native messaging or as a pairing code. Until then nothing but the
 * hello is read.
 */

/** Close codes the extension can act on. */
export const CloseCode = {
  /** Wrong, missing or late hello. */
  unauthorized: 4401,
  /** A text message after the hello, or a mux protocol violation. */
  protocol: 4400,
  /** Another authenticated connection took over. */
  replaced: 4409,
  /** The extension stopped reading and the send buffer hit its hard cap. */
  /** Too many connections are waiting to authenticate. */
  busy: 1013,
  /** The companion is shutting down. */
  goingAway: 1001,
} as const;

export const MAX_MESSAGE_BYTES = 64 * 1024;
export const DEFAULT_HELLO_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_PENDING = 16;
/** Above this the mux is told to hold DATA; below LOW_WATER it may go on. */
export const HIGH_WATER = 1024 * 1024;
export const LOW_WATER = 256 * 1024;
/** Control frames are sent even while congested; past this a stalled reader is cut off. */
export const HARD_LIMIT = 8 * 1024 * 1024;

const helloSchema = z.object({ type: z.literal('hello'), secret: z.string().min(1).max(512) });

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
  createMux?: (options: MuxOptions) => Mux;
}

export type DataPortEvents = {
  /** A tunnel connection was authenticated (true) or the authenticated one went away (false). */
  tunnel: [up: boolean];
};

export class DataPort extends Emitter<DataPortEvents> {
  private readonly http: Server;
  private readonly wss: WebSocketServer;
  private readonly secret: Buffer;
  private readonly origin: string | undefined;
  private readonly helloTimeoutMs: number;
  private readonly maxPending: number;
  private readonly createMux: (options: MuxOptions) => Mux;
  private readonly pending = new Set<WebSocket>();
  private active: Tunnel | undefined;
  private listening = false;

  constructor(options: DataPortOptions) {
    super();
    this.secret = Buffer.from(options.secret, 'utf8');
    this.origin = options.extensionOrigin?.replace(/\/$/, '');
    this.helloTimeoutMs = options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS;
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    this.createMux = options.createMux ?? ((muxOptions) => new Mux(muxOptions));
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_MESSAGE_BYTES,
      perMessageDeflate: false,
      clientTracking: false,
    });
    this.http = createServer((_request, response) => {
      response.writeHead(426, { Connection: 'close' }).end();
    });
    this.http.headersTimeout = 5_000;
    this.http.requestTimeout = 5_000;
    this.http.maxConnections = this.maxPending + 8;
    this.http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.upgrade(request, socket, head),
    );
    this.http.on('clientError', (_error, socket: Duplex) => socket.destroy());
    this.http.on('error', () => {}); // only possible at listen(), which reports it
    this.portOption = options.port ?? 0;
  }

  private readonly portOption: number;

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
    const active = this.active;
    active?.end(CloseCode.goingAway, 'companion closing');
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
    if (this.pending.size >= this.maxPending) {
      refuse(socket, 503, 'Service Unavailable');
      return;
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => this.authenticate(ws));
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

  private authenticate(ws: WebSocket): void {
    this.pending.add(ws);
    ws.on('error', () => {}); // e.g. an oversized message; the close that follows is handled below
    const timer = setTimeout(() => {
      this.pending.delete(ws);
      ws.close(CloseCode.unauthorized, 'no hello in time');
    }, this.helloTimeoutMs);
    ws.once('close', () => {
      clearTimeout(timer);
      this.pending.delete(ws);
    });
    ws.once('message', (data: RawData, isBinary: boolean) => {
      clearTimeout(timer);
      this.pending.delete(ws);
      if (ws.readyState !== WebSocket.OPEN) return;
      if (isBinary || !this.helloValid(data)) {
        ws.close(CloseCode.unauthorized, 'unauthorized');
        return;
      }
      const previous = this.active;
      this.active = new Tunnel(ws, this.createMux, () => {
        if (this.active?.ws !== ws) return;
        this.active = undefined;
        this.emit('tunnel', false);
      });
      previous?.end(CloseCode.replaced, 'replaced by a newer connection');
      if (!previous) this.emit('tunnel', true);
    });
  }

  private helloValid(data: RawData): boolean {
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawToBuffer(data).toString('utf8'));
    } catch {
      return false;
    }
    const hello = helloSchema.safeParse(parsed);
    if (!hello.success) return false;
    const given = Buffer.from(hello.data.secret, 'utf8');
    // The length of the secret is no secret; its bytes are compared without an early exit.
    if (given.length !== this.secret.length) {
      timingSafeEqual(this.secret, this.secret);
      return false;
    }
    return timingSafeEqual(given, this.secret);
  }
}

/** One authenticated connection and its mux, with the WebSocket's send buffer as the mux's backpressure. */
class Tunnel {
  readonly mux: Mux;
  private congested = false;
  private ended = false;

  constructor(
    readonly ws: WebSocket,
    createMux: (options: MuxOptions) => Mux,
    private readonly onEnd: () => void,
  ) {
    this.mux = createMux({
      role: 'initiator',
      send: (frame) => this.send(frame),
      canSend: () => this.canSend(),
    });
    this.mux.on('close', (error) => this.end(CloseCode.protocol, error?.code ?? 'closed'));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (!isBinary) {
        this.mux.close(new SessionError('malformed-frame', 'text message on the tunnel'));
        return;
      }
      this.mux.receive(rawToBuffer(data));
    });
    ws.once('close', () => this.end());
  }

  end(code?: number, reason?: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(code ?? CloseCode.goingAway, reason?.slice(0, 120));
    }
    this.mux.close(new SessionError('link-closed', 'the extension connection closed'));
    this.onEnd();
  }

  private send(frame: Uint8Array): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(frame, { binary: true }, () => this.flushed());
    if (this.ws.bufferedAmount > HARD_LIMIT) {
      // A close frame would wait behind the backlog it is about: cut the connection instead.
      this.ws.terminate();
      this.end();
      return;
    }
    if (this.ws.bufferedAmount > HIGH_WATER) this.congested = true;
  }

  private canSend(): boolean {
    if (!this.congested && this.ws.bufferedAmount > HIGH_WATER) this.congested = true;
    return !this.congested;
  }

  /** Called as each send reaches the kernel: the only signal ws gives that its buffer is shrinking. */
  private flushed(): void {
    if (!this.congested || this.ws.bufferedAmount > LOW_WATER) return;
    this.congested = false;
    this.mux.drain();
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
