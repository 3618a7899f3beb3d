import { afterEach, describe, expect, it, vi } from 'vitest';
import { SecureSession, type SessionOptions } from '../src/tunnel/session.js';
import { generateStaticKeyPair, type StaticKeyPair } from '../src/tunnel/noise.js';
import { SessionError, StreamError } from '../src/errors.js';
import { MAX_MUX_FRAME } from '../src/tunnel/mux-frames.js';
import type { MuxStream } from '../src/tunnel/mux-stream.js';
import { collect, pattern } from './helpers.js';
import { DEVELOPMENT_TRUST, developmentCertificateFor, type ExitTrust } from '../src/trust/index.js';

/**
 * Two SecureSessions joined by an in-memory wire that delivers asynchronously, like a DataChannel. `tap`
 * sees every message on its way and may drop it (return undefined) or replace it.
 */
type Tap = (message: Uint8Array, direction: 'up' | 'down') => Uint8Array | undefined;

function pair(
  options: {
    staticKey?: StaticKeyPair;
    exitKey?: Uint8Array;
    tap?: Tap;
    handshakeTimeoutMs?: number;
    mux?: SessionOptions['mux'];
    /** What the exit sends in its reply (default: a development certificate for its key). */
    certificate?: () => Uint8Array;
    trust?: ExitTrust;
  } = {},
) {
  const staticKey = options.staticKey ?? generateStaticKeyPair();
  const wire = { up: [] as Uint8Array[], down: [] as Uint8Array[] };
  // The wire delivers to whichever session exists by then (the client says hello from its constructor).
  const ends: { client?: SecureSession; exit?: SecureSession } = {};
  const carry = (direction: 'up' | 'down', message: Uint8Array) => {
    const copy = message.slice();
    wire[direction].push(copy);
    const tapped = options.tap ? options.tap(copy, direction) : copy;
    if (!tapped) return;
    queueMicrotask(() => (direction === 'up' ? ends.exit : ends.client)?.receive(tapped));
  };
  const exit = new SecureSession({
    role: 'exit',
    staticKey,
    certificate: options.certificate ?? developmentCertificateFor(staticKey.publicKey),
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    mux: options.mux,
    transport: { send: (m) => carry('down', m), canSend: () => true },
  });
  ends.exit = exit;
  const client = new SecureSession({
    role: 'client',
    exitKey: options.exitKey ?? staticKey.publicKey,
    trust: options.trust ?? DEVELOPMENT_TRUST,
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    mux: options.mux,
    transport: { send: (m) => carry('up', m), canSend: () => true },
  });
  ends.client = client;
  const closeOf = (session: SecureSession) =>
    new Promise<SessionError | undefined>((resolve) => session.once('close', resolve));
  return { client, exit, wire, staticKey, closeOf };
}

/** The exit side accepts every stream and echoes it. */
function echoStreams(exit: SecureSession): MuxStream[] {
  const streams: MuxStream[] = [];
  exit.mux.on('stream', (stream) => {
    streams.push(stream);
    stream.accept();
    stream.on('data', (chunk) => stream.write(chunk));
    stream.on('end', () => stream.end());
    stream.resume();
  });
  return streams;
}

const REQUEST = { kind: 'tcp', host: 'example.test', port: 443 } as const;

afterEach(() => {
  vi.useRealTimers();
});

describe('SecureSession handshake', () => {
  it('establishes both ends with the same handshake hash', async () => {
    const { client, exit, wire, staticKey } = pair();
    expect(client.established).toBe(false);
    await Promise.all([client.whenReady(), exit.whenReady()]);
    expect(client.established && exit.established).toBe(true);
    expect(client.sameHandshakeAs(exit)).toBe(true);
    expect(exit.sameHandshakeAs(client)).toBe(true);
    // One hello up (48 bytes), one reply down (48 bytes + the exit's certificate): nothing else before.
    const certificate = developmentCertificateFor(staticKey.publicKey)();
    expect(wire.up.map((m) => m.length)).toEqual([48]);
    expect(wire.down.map((m) => m.length)).toEqual([48 + certificate.length]);
    await expect(client.whenReady()).resolves.toBeUndefined();
  });

  it('two independent sessions do not share a handshake', async () => {
    const staticKey = generateStaticKeyPair();
    const a = pair({ staticKey });
    const b = pair({ staticKey });
    await Promise.all([a.client.whenReady(), b.client.whenReady()]);
    expect(a.client.sameHandshakeAs(b.exit)).toBe(false);
  });

  it('a client holding another exit key ends with wrong-exit on the exit and a timeout on the client', async () => {
    vi.useFakeTimers();
    const { client, exit, closeOf } = pair({
      exitKey: generateStaticKeyPair().publicKey,
      handshakeTimeoutMs: 1000,
    });
    const exitClosed = closeOf(exit);
    const clientReady = client.whenReady().catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(0);
    expect((await exitClosed)?.code).toBe('wrong-exit');
    expect(client.established).toBe(false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(await clientReady).toMatchObject({ code: 'handshake-timeout' });
  });

  it('a tampered reply ends the client with handshake-failed', async () => {
    const { client, closeOf } = pair({
      tap: (m, direction) => (direction === 'down' ? flip(m, 40) : m),
    });
    expect((await closeOf(client))?.code).toBe('handshake-failed');
    await expect(client.whenReady()).rejects.toBeInstanceOf(SessionError);
  });

  it('an exit without a valid certificate gets untrusted-exit and never one sealed frame', async () => {
    const other = generateStaticKeyPair();
    const cases: { certificate: () => Uint8Array; reason: string }[] = [
      { certificate: () => new Uint8Array(0), reason: 'no-certificate' },
      { certificate: developmentCertificateFor(other.publicKey), reason: 'key-mismatch' },
    ];
    for (const { certificate, reason } of cases) {
      const { client, wire, closeOf } = pair({ certificate });
      // Queued before the handshake ends (the mux's `early` frames): must die with the session, unsent.
      const opened = client.mux.open({ kind: 'tcp', host: 'example.org', port: 443 });
      const error = await closeOf(client);
      await expect(opened).rejects.toBeInstanceOf(StreamError);
      expect(error?.code).toBe('untrusted-exit');
      expect(error).toMatchObject({ reason });
      expect(wire.up.map((m) => m.length)).toEqual([48]);
    }
  });

  it('a client with no directory keys trusts no exit', async () => {
    const { client, closeOf } = pair({ trust: { directoryKeys: [] } });
    expect(await closeOf(client)).toMatchObject({ code: 'untrusted-exit', reason: 'no-directory-keys' });
  });

  it('a truncated hello ends the exit with handshake-failed', async () => {
    const { exit, closeOf } = pair({ tap: (m, direction) => (direction === 'up' ? m.subarray(0, 40) : m) });
    expect((await closeOf(exit))?.code).toBe('handshake-failed');
  });
});

describe('SecureSession handshake timeout', () => {
  it('closes a client whose exit never answers with handshake-timeout (default 15 s)', async () => {
    vi.useFakeTimers();
    const { client, exit, closeOf } = pair({ tap: () => undefined });
    const clientClosed = closeOf(client);
    const exitClosed = closeOf(exit);
    const ready = client.whenReady().catch((error: unknown) => error);
    await vi.advanceTimersByTimeAsync(14_999);
    expect(client.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(client.closed && exit.closed).toBe(true);
    expect((await clientClosed)?.code).toBe('handshake-timeout');
    expect((await exitClosed)?.code).toBe('handshake-timeout');
    const error = await ready;
    expect(error).toBeInstanceOf(SessionError);
    expect(error).toMatchObject({ code: 'handshake-timeout' });
  });

  it('honours handshakeTimeoutMs', async () => {
    vi.useFakeTimers();
    const { client } = pair({ tap: () => undefined, handshakeTimeoutMs: 250 });
    await vi.advanceTimersByTimeAsync(249);
    expect(client.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(client.closed).toBe(true);
  });

  it('does not fire once the session is established', async () => {
    vi.useFakeTimers();
    const { client, exit } = pair({ handshakeTimeoutMs: 1000 });
    await vi.advanceTimersByTimeAsync(0);
    expect(client.established && exit.established).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(client.established && exit.established).toBe(true);
  });
});

describe('SecureSession streams', () => {
  it('opens a stream and carries data both ways, sealed on the wire', async () => {
    const { client, exit, wire } = pair();
    const requests: unknown[] = [];
    exit.mux.on('stream', (_stream, request) => requests.push(request));
    echoStreams(exit);
    await client.whenReady();
    const stream = await client.mux.open(REQUEST);
    expect(requests).toEqual([REQUEST]);
    const received = collect(stream);
    const data = pattern(100_000);
    stream.write(data);
    stream.end();
    expect(await received).toEqual(data);
    // The host name never crosses the wire in clear.
    const hostBytes = Buffer.from('example.test');
    for (const message of [...wire.up, ...wire.down])
      expect(Buffer.from(message).includes(hostBytes)).toBe(false);
    // Every message fits a cell payload.
    for (const message of [...wire.up, ...wire.down])
      expect(message.length).toBeLessThanOrEqual(MAX_MUX_FRAME + 16);
  });

  it('closing a session ends its open streams with session-closed and fails pending opens', async () => {
    const { client, exit } = pair();
    const exitStreams: MuxStream[] = [];
    // Accept the first stream and leave the second one unanswered.
    exit.mux.on('stream', (stream) => {
      exitStreams.push(stream);
      if (exitStreams.length === 1) stream.accept();
    });
    await client.whenReady();
    const open = await client.mux.open(REQUEST);
    const pending = client.mux.open(REQUEST);
    await vi.waitFor(() => expect(exitStreams).toHaveLength(2));
    const openClosed = new Promise((resolve) => open.once('close', resolve));
    const exitStreamClosed = new Promise((resolve) => exitStreams[0]!.once('close', resolve));

    client.close(new SessionError('closed', 'the user turned protection off'));
    exit.close(new SessionError('circuit-closed'));

    const error = await openClosed;
    expect(error).toBeInstanceOf(StreamError);
    expect(error).toMatchObject({ code: 'session-closed' });
    await expect(pending).rejects.toMatchObject({ code: 'session-closed' });
    expect(await exitStreamClosed).toMatchObject({ code: 'session-closed' });
    await expect(client.mux.open(REQUEST)).rejects.toMatchObject({ code: 'session-closed' });
    expect(open.write(Uint8Array.of(1))).toBe(false);
    expect(client.mux.streamCount).toBe(0);
  });

  it('reports close once, with the error, and ignores messages after it', async () => {
    const { client, wire } = pair();
    await client.whenReady();
    const closes: (SessionError | undefined)[] = [];
    client.on('close', (error) => closes.push(error));
    client.close(new SessionError('link-closed'));
    client.close(new SessionError('closed'));
    expect(closes.map((e) => e?.code)).toEqual(['link-closed']);
    expect(() => client.receive(wire.down[0]!)).not.toThrow();
    expect(client.closed).toBe(true);
    await expect(client.whenReady()).rejects.toMatchObject({ code: 'link-closed' });
  });
});

describe('SecureSession hostile messages', () => {
  it('a replayed transport message ends the session with tampered', async () => {
    const { client, exit, wire, closeOf } = pair();
    echoStreams(exit);
    await client.whenReady();
    await client.mux.open(REQUEST);
    const exitClosed = closeOf(exit);
    exit.receive(wire.up[1]!); // the sealed OPEN, again
    expect((await exitClosed)?.code).toBe('tampered');
  });

  it('a reordered pair of transport messages ends the session with tampered', async () => {
    let held: Uint8Array | undefined;
    const { client, exit, closeOf } = pair({
      // Hold the first sealed message up (the one after the hello) and deliver it after the second.
      tap: (m, direction) => {
        if (direction !== 'up' || m.length === 48) return m;
        if (!held) {
          held = m;
          return undefined;
        }
        const first = held;
        queueMicrotask(() => {
          exit.receive(m);
          exit.receive(first);
        });
        return undefined;
      },
    });
    echoStreams(exit);
    await client.whenReady();
    void client.mux.open(REQUEST).catch(() => undefined);
    void client.mux.open(REQUEST).catch(() => undefined);
    expect((await closeOf(exit))?.code).toBe('tampered');
  });

  it('a flipped bit in a transport message ends the session with tampered', async () => {
    let armed = false;
    const { client, exit, closeOf } = pair({ tap: (m) => (armed ? flip(m, m.length - 1) : m) });
    await Promise.all([client.whenReady(), exit.whenReady()]);
    armed = true;
    void client.mux.open(REQUEST).catch(() => undefined);
    expect((await closeOf(exit))?.code).toBe('tampered');
  });

  it('an oversized transport message ends the session with frame-too-large', async () => {
    const { client, exit, closeOf } = pair();
    await Promise.all([client.whenReady(), exit.whenReady()]);
    const closed = closeOf(exit);
    exit.receive(new Uint8Array(MAX_MUX_FRAME + 17));
    expect((await closed)?.code).toBe('frame-too-large');
  });

  it('a sealed but invalid mux frame ends the session with the mux’s error', async () => {
    const { client, exit, closeOf } = pair();
    await Promise.all([client.whenReady(), exit.whenReady()]);
    const closed = closeOf(exit);
    // OPEN_OK for a stream nobody opened: valid crypto, invalid stream state.
    client.mux.sendFrame({ type: 'open-ok', streamId: 7 });
    expect((await closed)?.code).toBe('unknown-stream');
  });
});

describe('SecureSession API hazards', () => {
  // Bug (see report: "session.ts: frames before the handshake are dropped"): sendSealed() drops every frame
  // while the handshake runs, so an open() issued before `ready` is lost and only fails at openTimeoutMs.
  // TunnelClient awaits whenReady() first, so the engines are not affected.
  it('an open() issued before the handshake completes is not silently lost', async () => {
    const { client, exit } = pair({ mux: { openTimeoutMs: 300 } });
    echoStreams(exit);
    const stream = await client.mux.open(REQUEST);
    expect(stream.closed).toBe(false);
  });
});

function flip(bytes: Uint8Array, index: number): Uint8Array {
  const out = bytes.slice();
  out[index] = (out[index] ?? 0) ^ 0x80;
  return out;
}
