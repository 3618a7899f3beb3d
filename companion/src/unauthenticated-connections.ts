import type { Socket } from 'node:net';
import type { Clock } from '@underpass/shared/clock';

export interface UnauthenticatedConnectionsOptions {
  /** Connections not yet authenticated at once; a new one past this makes the oldest give way. */
  max: number;
  /** From TCP accept to the WebSocket upgrade; a connection that takes longer is destroyed. */
  deadlineMs: number;
  clock: Clock;
}

type Entry = { upgraded: boolean; timer: unknown };

/**
 * The data port's connections that have not proved they are the extension, in arrival order. They are few
 * (`max`), short-lived (`deadlineMs` from accept to the upgrade; the data port's hello timeout after it) and, when one too many arrives, the oldest gives way — the
 * oldest that has not even sent its WebSocket upgrade first. A local process holding idle connections open
 * therefore cannot keep the extension out: the extension's connection upgrades and says hello within
 * milliseconds, and is the newest when it does. (Refusing the newest, as a connection cap does, was what let
 * ~23 idle sockets lock the extension out.)
 */
export class UnauthenticatedConnections {
  private readonly sockets = new Map<Socket, Entry>();

  constructor(private readonly options: UnauthenticatedConnectionsOptions) {}

  get size(): number {
    return this.sockets.size;
  }

  /** A TCP connection was accepted. */
  add(socket: Socket): void {
    const timer = this.options.clock.setTimeout(() => socket.destroy(), this.options.deadlineMs);
    this.sockets.set(socket, { upgraded: false, timer });
    socket.once('close', () => this.forget(socket));
    while (this.sockets.size > this.options.max) {
      const oldest = this.oldest(false) ?? this.oldest(true);
      if (!oldest || oldest === socket) break;
      this.forget(oldest);
      oldest.destroy();
    }
  }

  /**
   * It sent a WebSocket upgrade that passed the Origin and Host checks: it is evicted only after raw ones, and
   * its time is now the hello timeout's, which closes it politely (4401).
   */
  upgraded(socket: Socket): void {
    const entry = this.sockets.get(socket);
    if (!entry) return;
    entry.upgraded = true;
    this.options.clock.clearTimeout(entry.timer);
  }

  /** Authenticated: no longer bounded here (the data port keeps one tunnel at a time). */
  authenticated(socket: Socket): void {
    this.forget(socket);
  }

  /** Closes every connection still waiting. */
  closeAll(): void {
    for (const socket of [...this.sockets.keys()]) {
      this.forget(socket);
      socket.destroy();
    }
  }

  private oldest(upgraded: boolean): Socket | undefined {
    for (const [socket, entry] of this.sockets) if (entry.upgraded === upgraded) return socket;
    return undefined;
  }

  private forget(socket: Socket): void {
    const entry = this.sockets.get(socket);
    if (!entry) return;
    this.options.clock.clearTimeout(entry.timer);
    this.sockets.delete(socket);
  }
}
