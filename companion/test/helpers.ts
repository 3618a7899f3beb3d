import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A TCP echo server on 127.0.0.1 that half-closes when its client does. */
export async function startEchoServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface Conversation {
  received: Buffer;
  /** How the server ended the connection. */
  ending: 'end' | 'reset';
}

/**
 * Sends `chunks` one by one (with a pause between them, so each is its own TCP segment) and collects every byte
 * until the server closes the connection.
 */
export function converse(port: number, chunks: Uint8Array[], pauseMs = 5): Promise<Conversation> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const received: Buffer[] = [];
    let ending: 'end' | 'reset' = 'end';
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') ending = 'reset';
      else reject(error);
    });
    socket.on('end', () => socket.end());
    socket.on('close', () => resolve({ received: Buffer.concat(received), ending }));
    socket.once('connect', async () => {
      socket.setNoDelay(true);
      for (const chunk of chunks) {
        if (socket.destroyed) return;
        socket.write(chunk);
        await sleep(pauseMs);
      }
    });
  });
}

/** A connected SOCKS client after a successful handshake; reads replies with `read(n)`. */
export class ByteReader {
  private buffer = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  ended = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  async read(n: number): Promise<Buffer> {
    while (this.buffer.length < n) {
      if (this.ended) throw new Error(`ended after ${this.buffer.length} of ${n} bytes`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    const out = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    return out;
  }

  async readToEnd(): Promise<Buffer> {
    while (!this.ended) await new Promise<void>((resolve) => this.waiters.push(resolve));
    const out = this.buffer;
    this.buffer = Buffer.alloc(0);
    return out;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

export function connectTo(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(socket));
    socket.once('error', reject);
  });
}

export function greeting(): Buffer {
  return Buffer.from([5, 1, 0]);
}

export function connectRequest(host: string, port: number): Buffer {
  const name = Buffer.from(host, 'latin1');
  return Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 255])]);
}

/** Handshakes through the SOCKS server to host:port; returns the reader positioned after the reply. */
export async function socksConnect(
  socksPort: number,
  host: string,
  port: number,
): Promise<{ socket: Socket; reader: ByteReader; reply: Buffer }> {
  const socket = await connectTo(socksPort);
  const reader = new ByteReader(socket);
  socket.write(greeting());
  const method = await reader.read(2);
  if (method[0] !== 5 || method[1] !== 0) throw new Error(`method reply ${method.toString('hex')}`);
  socket.write(connectRequest(host, port));
  const reply = await reader.read(10);
  return { socket, reader, reply };
}

export async function waitFor(condition: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
