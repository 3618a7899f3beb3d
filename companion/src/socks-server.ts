import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import {
  buildSocksReply,
  socksReplyForStreamError,
  Socks5Handshake,
  SocksReply,
  type SocksReplyCode,
} from './socks5.js';
import { withDeadline } from '@underpass/shared/deadline';
import { Emitter } from '@underpass/shared/emitter';
import {
  isDestinationRefusal,
  StreamError,
  toUnderpassError,
  UnderpassError,
} from '@underpass/shared/errors';
import { NodeSocketStream, pipeBoth, type ByteStream } from '@underpass/shared/streams';
import { type StreamRequest } from '@underpass/shared/tunnel';
import { procPeerUid, type PeerUidLookup } from './peer-uid.js';

/**
 * What `openStream` rejects with when no tunnel is up. The SOCKS client gets "network unreachable" and the
 * connection counts as blocked: the browser still points at us and we refuse, which is the kill switch.
 */
export class NoTunnelError extends StreamError {
  constructor() {
    super('unreachable', 'no tunnel');
    this.name = 'NoTunnelError';
  }
}

export type OpenStream = (request: StreamRequest) => Promise<ByteStream>;

export interface SocksServerOptions {
  /** Opens the far end of a CONNECT. Rejects with a StreamError (NoTunnelError when there is no tunnel). */
  openStream: OpenStream;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Always loopback in production; a test may not change it to anything else either. */
  host?: '127.0.0.1' | '::1';
  /** From accept to a complete CONNECT request. */
  handshakeTimeoutMs?: number;
  /** From the CONNECT request to the stream being open; a hung `openStream` is answered with "TTL expired". */
  openTimeoutMs?: number;
  maxConnections?: number;
  /**
   * Only connections owned by this user are served (Linux, where the kernel says who owns a local socket):
   * others are reset. Default: the companion's own uid on Linux; `null` accepts any local user.
   */
  allowedUid?: number | null;
  /** Who owns the client end of a connection; default /proc/net/tcp{,6} on Linux. */
  peerUid?: PeerUidLookup;
}

export interface SocksStats {
  /** Client connections open now (handshaking, waiting for the tunnel, or piping). */
  connections: number;
  /** Client connections accepted since start. */
  total: number;
  /** CONNECTs refused because no tunnel was up. */
  blocked: number;
  /**
   * CONNECTs whose stream failed for another reason (policy, DNS, refused, timeout…): the open rejected, or,
   * for a stream accepted early (before the exit answered), it closed with the exit's refusal before any byte
   * came back.
   */
  failed: number;
  /** Connections refused at accept because `maxConnections` were open. */
  overLimit: number;
  /** Connections refused because another local user (or an owner the kernel did not tell) made them. */
  otherUser: number;
}

export type SocksServerEvents = {
  /** Counters changed. */
  stats: [stats: SocksStats];
  /** Listening, or stopped listening because of an error (bad port, port in use). */
  error: [error: Error];
};

export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
export const DEFAULT_OPEN_TIMEOUT_MS = 45_000;
export const DEFAULT_MAX_CONNECTIONS = 512;
/** Bytes a client may send before its CONNECT is answered; beyond this, reading pauses. */
export const EARLY_DATA_LIMIT = 64 * 1024;

/** The local SOCKS5 endpoint that the browser's proxy setting names. One instance per companion run. */
export class SocksServer extends Emitter<SocksServerEvents> {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly counters: SocksStats = {
    connections: 0,
    total: 0,
    blocked: 0,
    failed: 0,
    overLimit: 0,
    otherUser: 0,
  };
  private readonly handshakeTimeoutMs: number;
  private readonly openTimeoutMs: number;
  private readonly maxConnections: number;
  private readonly allowedUid: number | undefined;
  private listening = false;

  constructor(private readonly options: SocksServerOptions) {
    super();
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.openTimeoutMs = options.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
    this.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    const ownUid = process.platform === 'linux' ? process.getuid?.() : undefined;
    this.allowedUid = options.allowedUid === null ? undefined : (options.allowedUid ?? ownUid);
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) =>
      this.accept(socket),
    );
    this.server.on('error', (error) => this.emit('error', error));
  }

  /** Starts listening; resolves with the port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      this.server.once('error', onError);
      this.server.listen({ host: this.options.host ?? '127.0.0.1', port: this.options.port ?? 0 }, () => {
        this.server.off('error', onError);
        this.listening = true;
        resolve(this.port);
      });
    });
  }

  get port(): number {
    return (this.server.address() as AddressInfo | null)?.port ?? 0;
  }

  stats(): SocksStats {
    return { ...this.counters };
  }

  /** Stops listening and resets every open client connection. */
  close(): Promise<void> {
    for (const socket of this.sockets) socket.resetAndDestroy();
    if (!this.listening) return Promise.resolve();
    this.listening = false;
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    if (this.sockets.size >= this.maxConnections) {
      this.counters.overLimit += 1;
      socket.on('error', () => {});
      socket.resetAndDestroy();
      this.changed();
      return;
    }
    this.sockets.add(socket);
    this.counters.connections += 1;
    this.counters.total += 1;
    this.changed();
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.counters.connections -= 1;
      this.changed();
    });
    if (this.allowedUid === undefined) {
      this.serve(socket);
      return;
    }
    // The socket is paused (pauseOnConnect): nothing is read until its owner is known to be ours.
    const lookup = this.options.peerUid ?? procPeerUid;
    const allowed = this.allowedUid;
    lookup(socket.remotePort ?? 0, socket.localPort ?? 0).then(
      (uid) => {
        if (uid === allowed) return this.serve(socket);
        this.counters.otherUser += 1;
        socket.on('error', () => {});
        socket.resetAndDestroy();
        this.changed();
      },
      () => socket.resetAndDestroy(),
    );
  }

  private serve(socket: Socket): void {
    if (socket.destroyed) return;
    new SocksConnection(socket, this.options.openStream, {
      handshakeTimeoutMs: this.handshakeTimeoutMs,
      openTimeoutMs: this.openTimeoutMs,
      onOpenFailed: (error) => {
        if (error instanceof NoTunnelError) this.counters.blocked += 1;
        else this.counters.failed += 1;
        this.changed();
      },
    }).start();
  }

  private changed(): void {
    this.emit('stats', this.stats());
  }
}

interface ConnectionOptions {
  handshakeTimeoutMs: number;
  openTimeoutMs: number;
  onOpenFailed(error: UnderpassError): void;
}

/** One client connection: handshake, open, reply, pipe. Every failure ends in a reply (if due) and a close. */
class SocksConnection {
  private readonly handshake = new Socks5Handshake();
  private timer: NodeJS.Timeout | undefined;
  private readonly onData = (chunk: Buffer) => this.receive(chunk);
  /** A client that half-closes before finishing the handshake has nothing more to say. */
  private readonly onEnd = () => this.socket.destroy();

  constructor(
    private readonly socket: Socket,
    private readonly openStream: OpenStream,
    private readonly options: ConnectionOptions,
  ) {}

  start(): void {
    const socket = this.socket;
    socket.setNoDelay(true);
    socket.on('error', () => {}); // the 'close' that follows does the clean-up
    socket.once('close', () => clearTimeout(this.timer));
    this.timer = setTimeout(() => socket.destroy(), this.options.handshakeTimeoutMs);
    socket.on('data', this.onData);
    socket.once('end', this.onEnd);
    socket.resume();
  }

  private receive(chunk: Buffer): void {
    const step = this.handshake.feed(chunk);
    for (const bytes of step.send) this.socket.write(bytes);
    if (step.state === 'pending') return;
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    clearTimeout(this.timer);
    if (step.state === 'rejected') {
      this.socket.pause();
      this.socket.end();
      this.socket.destroySoon();
      return;
    }
    const request: StreamRequest = { kind: 'tcp', host: step.request.host, port: step.request.port };
    void this.open(request, step.rest);
  }

  /**
   * While the stream opens, the socket is still read, so that a client that gives up is noticed at once rather
   * than at the open timeout. What it sends meanwhile is kept (up to EARLY_DATA_LIMIT, then reading pauses).
   * A client that half-closes before its reply is treated as gone: no SOCKS client has a reason to.
   */
  private async open(request: StreamRequest, rest: Uint8Array): Promise<void> {
    const socket = this.socket;
    const early: Uint8Array[] = rest.length > 0 ? [rest] : [];
    let earlyBytes = rest.length;
    const onEarlyData = (chunk: Buffer) => {
      early.push(chunk);
      earlyBytes += chunk.length;
      if (earlyBytes >= EARLY_DATA_LIMIT) socket.pause();
    };
    const onEarlyEnd = () => socket.destroy();
    socket.on('data', onEarlyData);
    socket.once('end', onEarlyEnd);
    if (earlyBytes >= EARLY_DATA_LIMIT) socket.pause();

    let stream: ByteStream;
    try {
      stream = await withDeadline(this.openStream(request), {
        ms: this.options.openTimeoutMs,
        onTimeout: () => new StreamError('timeout', 'the stream did not open in time'),
        disposeLate: (late) => late.destroy(new StreamError('reset', 'the SOCKS client went away')),
      });
    } catch (error) {
      this.fail(toUnderpassError(error, 'reset'));
      return;
    } finally {
      socket.off('data', onEarlyData);
      socket.off('end', onEarlyEnd);
      socket.pause();
    }
    if (socket.destroyed || !socket.writable) {
      stream.destroy(new StreamError('reset', 'the SOCKS client went away'));
      return;
    }
    socket.write(buildSocksReply(SocksReply.succeeded));
    this.countRefusalAfterAccept(stream);
    const local = new NodeSocketStream(socket);
    for (const chunk of early) stream.write(chunk);
    void pipeBoth(local, stream);
    local.resume();
  }

  /**
   * A stream accepted early (PROTOCOL.md §4, "Early data") was answered with success before the exit tried the
   * destination, so the exit's refusal arrives as the stream closing with its code. That counts as the open
   * failing (`onOpenFailed`), as it would have had the open waited, provided no byte came back first (then the
   * destination was reached). Only the exit's refusals of the destination count (`isDestinationRefusal`): not
   * `reset`, which a peer that went away sends, and so does this side when the SOCKS client goes first. (The
   * exit's idle timeout also says `timeout`, but only after minutes of silence both ways.) Only once per
   * connection: this runs only for an open that succeeded, and 'close' fires once.
   */
  private countRefusalAfterAccept(stream: ByteStream): void {
    let answered = false;
    stream.once('data', () => (answered = true));
    stream.once('close', (error) => {
      if (!answered && error && isDestinationRefusal(error.code)) this.options.onOpenFailed(error);
    });
  }

  private fail(error: UnderpassError): void {
    this.options.onOpenFailed(error);
    if (this.socket.destroyed) return;
    const code: SocksReplyCode = socksReplyForStreamError(error.code);
    this.socket.end(buildSocksReply(code));
    this.socket.destroySoon();
  }
}
