import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { encodeNativeMessage, NativeMessageDecoder, MAX_INBOUND_BYTES } from '../src/native-messaging.js';
import { parseCaller } from '../src/host.js';
import { converse, connectRequest, greeting } from './helpers.js';

const BIN = fileURLToPath(new URL('../bin/underpass-companion.js', import.meta.url));
const ORIGIN = 'chrome-extension://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/';

function frame(body: string | Buffer): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const header = Buffer.alloc(4);
  header.writeUInt32LE(bytes.length, 0);
  return Buffer.concat([header, bytes]);
}

/** The real host process, spoken to exactly as the browser does: framed JSON on its stdin and stdout. */
class Host {
  readonly child: ChildProcessWithoutNullStreams;
  private stdout = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [BIN, ...args], { stdio: 'pipe' });
    this.child.stdout.on('data', (chunk: Buffer) => {
      this.stdout = Buffer.concat([this.stdout, chunk]);
      this.wake();
    });
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.child.stdin.on('error', () => {});
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        this.wake();
        resolve(code);
      }),
    );
  }

  /** The next framed message; fails if stdout carries anything that is not a well-formed frame. */
  async next(): Promise<Record<string, unknown>> {
    for (;;) {
      if (this.stdout.length >= 4) {
        const length = this.stdout.readUInt32LE(0);
        if (this.stdout.length >= 4 + length) {
          const body = this.stdout.subarray(4, 4 + length).toString('utf8');
          this.stdout = this.stdout.subarray(4 + length);
          return JSON.parse(body) as Record<string, unknown>;
        }
      }
      if (this.child.exitCode !== null) {
        throw new Error(
          `host exited (${this.child.exitCode}) with ${this.stdout.length} bytes left: ${this.stderr}`,
        );
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  send(message: unknown): void {
    this.child.stdin.write(frame(JSON.stringify(message)));
  }

  get leftover(): number {
    return this.stdout.length;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

const hosts: Host[] = [];
function host(args: string[]): Host {
  const h = new Host(args);
  hosts.push(h);
  return h;
}
afterEach(() => {
  for (const h of hosts.splice(0)) if (h.child.exitCode === null) h.child.kill();
});

describe('the native-messaging host process', () => {
  it('announces itself, answers status, pairs with the extension and exits when stdin closes', async () => {
    const h = host(['native', ORIGIN]);
    const ready = await h.next();
    expect(ready).toMatchObject({ type: 'ready', version: 1 });
    expect(ready.socksPort).toEqual(expect.any(Number));
    expect(ready.dataPort).toEqual(expect.any(Number));
    expect(ready.secret).toMatch(/^[A-Za-z0-9_-]{43}$/);

    h.send({ type: 'status' });
    expect(await h.next()).toEqual({ type: 'status', tunnel: false, connections: 0, blocked: 0 });

    const blocked = await converse(ready.socksPort as number, [
      greeting(),
      connectRequest('example.com', 443),
    ]);
    expect([...blocked.received.subarray(2, 4)]).toEqual([5, 3]);

    const ws = new WebSocket(`ws://127.0.0.1:${ready.dataPort as number}/`, {
      headers: { Origin: ORIGIN.slice(0, -1) },
    });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    ws.send(JSON.stringify({ type: 'hello', secret: ready.secret }));
    let status: Record<string, unknown> = {};
    for (let i = 0; i < 50 && status.tunnel !== true; i++) {
      h.send({ type: 'status' });
      status = await h.next();
    }
    expect(status).toEqual({ type: 'status', tunnel: true, connections: 0, blocked: 1 });

    const wsClosed = new Promise((resolve) => ws.once('close', resolve));
    h.child.stdin.end();
    expect(await h.exited).toBe(0);
    await wsClosed;
    expect(h.leftover).toBe(0);
  });

  it('accepts the arguments Firefox passes (manifest path, extension id)', async () => {
    const h = host([
      'native',
      '/home/u/.mozilla/native-messaging-hosts/org.underpass.companion.json',
      'underpass@example.org',
    ]);
    expect(await h.next()).toMatchObject({ type: 'ready', version: 1 });
    h.child.stdin.end();
    expect(await h.exited).toBe(0);
  });

  it('refuses to run for a caller that is not an extension', async () => {
    const h = host(['native', 'https://evil.example/']);
    expect(await h.next()).toMatchObject({ type: 'error', code: 'bad-caller' });
    expect(await h.exited).toBe(2);
  });

  it('answers an oversized length with an error and exits non-zero', async () => {
    const h = host(['native', ORIGIN]);
    await h.next();
    h.child.stdin.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    expect(await h.next()).toMatchObject({ type: 'error', code: 'too-large' });
    expect(await h.exited).toBe(1);
  });

  it('answers a body that is not JSON with an error and exits non-zero', async () => {
    const h = host(['native', ORIGIN]);
    await h.next();
    h.child.stdin.write(frame('{"type": "status"'));
    expect(await h.next()).toMatchObject({ type: 'error', code: 'malformed' });
    expect(await h.exited).toBe(1);
  });

  it('answers an unknown message type with an error and keeps serving', async () => {
    const h = host(['native', ORIGIN]);
    await h.next();
    h.send({ type: 'teleport' });
    expect(await h.next()).toMatchObject({ type: 'error', code: 'unknown-type' });
    h.send({ type: 'status' });
    expect(await h.next()).toMatchObject({ type: 'status', tunnel: false });
    h.child.stdin.end();
    expect(await h.exited).toBe(0);
  });
});

describe('NativeMessageDecoder', () => {
  const status = frame('{"type":"status"}');

  it('splits messages that arrive byte by byte and several per chunk', () => {
    const decoder = new NativeMessageDecoder();
    const out = [];
    for (const byte of status) out.push(...decoder.push(Buffer.of(byte)));
    out.push(...decoder.push(Buffer.concat([status, status])));
    expect(out).toEqual([1, 2, 3].map(() => ({ ok: true, message: { type: 'status' } })));
    expect(decoder.partial).toBe(false);
  });

  it('rejects a length over the limit before reading the body', () => {
    const header = Buffer.alloc(4);
    header.writeUInt32LE(MAX_INBOUND_BYTES + 1, 0);
    const [result] = new NativeMessageDecoder().push(header);
    expect(result).toMatchObject({ ok: false, fatal: true, error: { code: 'too-large' } });
  });

  it.each([
    ['invalid UTF-8', frame(Buffer.from([0x7b, 0xff, 0x7d]))],
    ['a JSON array', frame('[1,2]')],
    ['an empty body', frame('')],
    ['a status with a wrong type field', frame('{"type":7}')],
  ])('treats %s as fatal', (_name, bytes) => {
    const decoder = new NativeMessageDecoder();
    expect(decoder.push(bytes)[0]).toMatchObject({ ok: false, fatal: true, error: { code: 'malformed' } });
    expect(decoder.push(status)).toEqual([]);
  });

  it('encodes outbound messages with a little-endian length', () => {
    const bytes = encodeNativeMessage({ type: 'status', tunnel: true, connections: 2, blocked: 0 });
    expect(bytes.readUInt32LE(0)).toBe(bytes.length - 4);
    expect(JSON.parse(bytes.subarray(4).toString())).toEqual({
      type: 'status',
      tunnel: true,
      connections: 2,
      blocked: 0,
    });
  });
});

describe('parseCaller', () => {
  it('accepts Chrome origins and Firefox (path, id) pairs only', () => {
    expect(parseCaller([ORIGIN])).toEqual({ browser: 'chromium', origin: ORIGIN });
    expect(parseCaller([ORIGIN, '--parent-window=0'])).toEqual({ browser: 'chromium', origin: ORIGIN });
    expect(parseCaller(['/x/y.json', '{12345678-1234-1234-1234-123456789abc}'])).toEqual({
      browser: 'firefox',
      extensionId: '{12345678-1234-1234-1234-123456789abc}',
    });
    expect(parseCaller([])).toBeUndefined();
    expect(parseCaller(['chrome-extension://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/'])).toBeUndefined();
    expect(parseCaller(['chrome-extension://qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq/'])).toBeUndefined();
    expect(parseCaller([ORIGIN, 'extra'])).toBeUndefined();
    expect(parseCaller(['/x/y.json', 'not an id'])).toBeUndefined();
  });
});
