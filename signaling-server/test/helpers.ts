/** Test helpers: raw `ws` peers that record every frame, so tests can assert on the exact wire traffic. */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { x25519 } from '@noble/curves/ed25519.js';
import { afterEach } from 'vitest';
import { WebSocket } from 'ws';
import { proveExitKey } from '@underpass/shared/signaling';
import { encodeExitKey } from '@underpass/shared/signaling';
import type { ServerMessage } from '@underpass/shared/signaling';
import { startSignalingServer, type SignalingServer, type SignalingServerOptions } from '../src/server.js';

/** Secret keys of the exit keys made by newExitKey(), so join() can answer the server's challenge. */
const exitSecrets = new Map<string, Uint8Array>();

/** A real X25519 public key (base64url); its secret is kept for join(). */
export function newExitKey(): string {
  const secret = x25519.utils.randomSecretKey();
  const key = encodeExitKey(x25519.getPublicKey(secret));
  exitSecrets.set(key, secret);
  return key;
}

export function exitSecretOf(exitKey: string): Uint8Array {
  const secret = exitSecrets.get(exitKey);
  if (!secret) throw new Error('not a key from newExitKey()');
  return secret;
}

/** The value of one sample line of Prometheus text, e.g. `underpass_signaling_peers{role="relay"}`. */
export function sample(text: string, name: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `)) return Number(line.slice(name.length + 1));
  }
  return undefined;
}

/** One metric of a server as GET /metrics serves it. */
export async function scrape(server: SignalingServer, name: string): Promise<number | undefined> {
  const res = await fetch(server.url.replace('ws://', 'http://') + 'metrics');
  return sample(await res.text(), name);
}

export async function startTestServer(
  options: Partial<SignalingServerOptions> = {},
): Promise<SignalingServer> {
  // Short waits for a relay, so tests that expect no-relay-available do not sit out the default.
  return startSignalingServer({
    port: 0,
    host: '127.0.0.1',
    ...options,
    limits: { matchWaitMs: 50, ...options.limits },
  });
}

/**
 * The server of the current test and the raw peers it opened, all closed after each test. Call at the top
 * of a test file; `start` begins a test, `join` and `open` connect peers to that test's server.
 */
export function serverUnderTest() {
  let current: SignalingServer | undefined;
  const peers: RawPeer[] = [];
  afterEach(async () => {
    for (const peer of peers.splice(0)) peer.close();
    await current?.close();
    current = undefined;
  });
  const server = (): SignalingServer => {
    if (!current) throw new Error('start() the server first');
    return current;
  };
  const track = (peer: RawPeer): RawPeer => {
    peers.push(peer);
    return peer;
  };
  return {
    server,
    async start(options: Partial<SignalingServerOptions> = {}): Promise<SignalingServer> {
      current = await startTestServer(options);
      return current;
    },
    join: async (hello: Record<string, unknown>) => track(await RawPeer.join(server().url, hello)),
    open: async (options?: Parameters<typeof RawPeer.open>[1]) =>
      track(await RawPeer.open(server().url, options)),
  };
}

/** Socket options of a raw peer: `headers` as a reverse proxy would add them to the upgrade request. */
export type RawPeerOptions = { autoPong?: boolean; headers?: Record<string, string> };

export class RawPeer {
  readonly ws: WebSocket;
  private readonly inbox: ServerMessage[] = [];
  private waiters: (() => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  peerId = '';

  private constructor(url: string, options: RawPeerOptions = {}) {
    this.ws = new WebSocket(url, options);
    this.ws.on('message', (data) => {
      this.inbox.push(JSON.parse(String(data)) as ServerMessage);
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        this.wake();
      });
    });
    this.ws.on('error', () => {});
  }

  static async open(url: string, options: RawPeerOptions = {}): Promise<RawPeer> {
    const peer = new RawPeer(url, options);
    await new Promise<void>((resolve, reject) => {
      peer.ws.once('open', () => resolve());
      peer.ws.once('error', reject);
    });
    return peer;
  }

  /** Opens a socket, says hello (an exit also proves its key), and waits for the welcome. */
  static async join(url: string, hello: Record<string, unknown>): Promise<RawPeer> {
    const peer = await RawPeer.open(url);
    peer.send({ type: 'hello', v: 1, ...hello });
    if (hello['role'] === 'exit') {
      const challenge = await peer.next('challenge');
      peer.send({ type: 'prove', proof: proveExitKey(exitSecretOf(String(hello['exitKey'])), challenge) });
    }
    const welcome = await peer.next('welcome');
    peer.peerId = welcome.peerId;
    return peer;
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** The next frame (of `type`, skipping none: a frame of another type fails the test). */
  async next<T extends ServerMessage['type']>(
    type?: T,
    timeoutMs = 5_000,
  ): Promise<Extract<ServerMessage, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length === 0) {
      if (this.ws.readyState === WebSocket.CLOSED)
        throw new Error(`socket closed while waiting for ${type ?? 'a frame'}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${type ?? 'a frame'}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const msg = this.inbox.shift()!;
    if (type !== undefined && msg.type !== type)
      throw new Error(`expected ${type}, got ${JSON.stringify(msg)}`);
    return msg as Extract<ServerMessage, { type: T }>;
  }

  /** Frames received and not yet taken with next(). */
  get pending(): readonly ServerMessage[] {
    return this.inbox;
  }

  /** Resolves once the server has certainly processed everything this peer sent before (a round trip). */
  async sync(): Promise<void> {
    this.send({ type: 'link-closed', linkId: 'AAAAAAAAAAAAAAAAAAAAAA' });
    const msg = await this.next('error');
    if (msg.code !== 'unknown-link') throw new Error(`sync got ${JSON.stringify(msg)}`);
  }

  close(): void {
    this.ws.close();
  }
}

const signalingBin = fileURLToPath(new URL('../bin/underpass-signaling.js', import.meta.url));

/**
 * A signaling instance in its own process on Redis, so that a test can SIGKILL it: resolves with its URL and port
 * once it logged `ready`. `port` 0 (the default) picks a free one; give the old port to restart it in place. The
 * caller kills it.
 */
export async function spawnInstance(
  redisUrl: string,
  prefix: string,
  options: { port?: number; expiryMs?: number } = {},
): Promise<{ child: ChildProcessByStdio<null, Readable, Readable>; url: string; port: number }> {
  const child = spawn(
    process.execPath,
    [
      signalingBin,
      ...['--port', String(options.port ?? 0), '--redis', redisUrl],
      ...['--redis-expiry-ms', String(options.expiryMs ?? 1000), '--log-level', 'info'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, UNDERPASS_SIGNALING_REDIS_PREFIX: prefix } },
  );
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let buffer = '';
      child.stdout.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        const match = /"msg":"ready".*?"url":"([^"]+)"|"url":"([^"]+)".*?"msg":"ready"/.exec(buffer);
        if (match) resolve(match[1] ?? match[2] ?? '');
      });
      child.once('exit', (code) => reject(new Error(`the signaling instance exited early with ${code}`)));
    });
    return { child, url, port: Number(new URL(url).port) };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}
