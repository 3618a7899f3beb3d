import { describe, expect, it, vi } from 'vitest';
import { Emitter } from '../src/emitter.js';
import { memoryLinkPair } from '../src/links/memory-link.js';
import { ExitEngine, type Dialer } from '../src/exit/exit-engine.js';
import { SESSION_LIMIT_CODE, type SessionLimits } from '../src/exit/exit-limits.js';
import { TunnelClient } from '../src/engines/client.js';
import { generateStaticKeyPair } from '../src/tunnel/noise.js';
import { SessionError, StreamError, type UnderpassError } from '../src/errors.js';
import { ThrottledStream, TokenBucket } from '../src/rate-limit.js';
import { ManualClock } from '../../test/manual-clock.js';
import type { ByteStream, ByteStreamEvents } from '../src/streams/byte-stream.js';
import { collect, echoDialer, pattern } from './helpers.js';
import { DEVELOPMENT_TRUST, developmentCertificateFor } from '../src/trust/index.js';

/** A clock the test moves by hand: timers fire only inside `advance`. */

const flush = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** A controllable outside stream: records writes, emits what the test pushes, honours pause. */
class FakeOutside extends Emitter<ByteStreamEvents> implements ByteStream {
  closed = false;
  paused = true;
  written = 0;
  writeAnswer = true;
  write(chunk: Uint8Array): boolean {
    this.written += chunk.length;
    return this.writeAnswer;
  }
  end(): void {}
  destroy(error?: UnderpassError): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close', error);
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  /** The test plays the outside world. */
  fire<E extends keyof ByteStreamEvents>(event: E, ...args: ByteStreamEvents[E]): void {
    this.emit(event, ...args);
  }
}

describe('TokenBucket', () => {
  it('refuses what does not fit, refills at its rate and never above its burst', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSecond: 10, burst: 5, clock });
    for (let i = 0; i < 5; i++) expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);
    clock.advance(100);
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);
    clock.advance(60_000);
    expect(bucket.available()).toBe(5);
  });

  it('take() goes into debt and says how long until it is paid', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSecond: 1000, burst: 1000, clock });
    expect(bucket.take(500)).toBe(0);
    expect(bucket.take(1500)).toBe(1000);
    clock.advance(400);
    expect(bucket.waitMs()).toBe(600);
    clock.advance(600);
    expect(bucket.waitMs()).toBe(0);
  });

  it('rejects a rate or burst that is not positive', () => {
    expect(() => new TokenBucket({ ratePerSecond: 0 })).toThrow(RangeError);
    expect(() => new TokenBucket({ ratePerSecond: 1, burst: -1 })).toThrow(RangeError);
  });
});

describe('ThrottledStream', () => {
  it('pauses reading while the bucket is in debt and resumes when it is paid', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSecond: 1000, burst: 1000, clock });
    const inner = new FakeOutside();
    const throttled = new ThrottledStream(inner, bucket, clock);
    const got: number[] = [];
    throttled.on('data', (chunk) => got.push(chunk.length));
    throttled.resume();
    expect(inner.paused).toBe(false);
    inner.fire('data', new Uint8Array(3000));
    expect(got).toEqual([3000]);
    expect(inner.paused).toBe(true);
    clock.advance(1999);
    expect(inner.paused).toBe(true);
    clock.advance(1);
    expect(inner.paused).toBe(false);
  });

  it('stays paused after the debt is paid if its reader paused it', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSecond: 1000, burst: 1000, clock });
    const inner = new FakeOutside();
    const throttled = new ThrottledStream(inner, bucket, clock);
    throttled.resume();
    inner.fire('data', new Uint8Array(2000));
    throttled.pause();
    clock.advance(5000);
    expect(inner.paused).toBe(true);
    throttled.resume();
    expect(inner.paused).toBe(false);
  });

  it('answers write() with false while in debt and emits drain once paid and the inner stream drained', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSecond: 1000, burst: 1000, clock });
    const inner = new FakeOutside();
    const throttled = new ThrottledStream(inner, bucket, clock);
    let drains = 0;
    throttled.on('drain', () => drains++);
    expect(throttled.write(new Uint8Array(500))).toBe(true);
    inner.writeAnswer = false;
    expect(throttled.write(new Uint8Array(1500))).toBe(false);
    clock.advance(1000);
    expect(drains).toBe(0); // paid, but the inner stream still holds its data
    inner.fire('drain');
    expect(drains).toBe(1);
    expect(inner.written).toBe(2000);
  });

  it('forwards close and clears its timer', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket({ ratePerSecond: 10, burst: 10, clock });
    const inner = new FakeOutside();
    const throttled = new ThrottledStream(inner, bucket, clock);
    let closedWith: UnderpassError | undefined;
    throttled.on('close', (error) => (closedWith = error));
    throttled.resume();
    inner.fire('data', new Uint8Array(100));
    expect(clock.pending).toBe(1);
    throttled.destroy(new StreamError('reset'));
    expect(closedWith).toMatchObject({ code: 'reset' });
    expect(clock.pending).toBe(0);
  });
});

function setup(limits: Partial<SessionLimits> = {}, dialer: Dialer = echoDialer(), maxSessions?: number) {
  const staticKey = generateStaticKeyPair();
  const clock = new ManualClock();
  const exit = new ExitEngine({
    certificate: developmentCertificateFor(staticKey.publicKey),
    staticKey,
    dialer,
    limits,
    clock,
    maxSessions,
  });
  const connect = () => {
    const [clientSide, exitSide] = memoryLinkPair();
    exit.addLink(exitSide);
    const client = new TunnelClient({
      trust: DEVELOPMENT_TRUST,
      link: clientSide,
      exitKey: staticKey.publicKey,
    });
    const closed = new Promise<SessionError | undefined>((resolve) => client.once('close', resolve));
    return { client, clientSide, closed };
  };
  return { exit, clock, connect };
}

async function echo(client: TunnelClient, size: number): Promise<Uint8Array> {
  const stream = await client.open({ kind: 'tcp', host: 'example.test', port: 80 });
  const received = collect(stream);
  stream.write(pattern(size));
  stream.end();
  return received;
}

describe('ExitEngine per-session limits', () => {
  it('a frame flood ends that session with the limit code; another client goes on', async () => {
    const { exit, connect } = setup({ messagesPerSecond: 10, messagesBurst: 200 });
    const good = connect();
    const bad = connect();
    await Promise.all([good.client.ready(), bad.client.ready()]);
    const stream = await bad.client.open({ kind: 'tcp', host: 'example.test', port: 80 });
    // Each frame alone is legal (a 1-byte window increment); a thousand of them is not.
    for (let i = 0; i < 1000; i++) {
      bad.client.session.mux.sendFrame({ type: 'window', streamId: stream.id, increment: 1 });
    }
    expect(await bad.closed).toMatchObject({ code: SESSION_LIMIT_CODE });
    expect(await echo(good.client, 50_000)).toEqual(pattern(50_000));
    expect(exit.stats()).toMatchObject({ sessions: 1, sessionsCutOff: 1 });
  });

  it('opens within the rate are fine; a burst past it is refused; a flood of opens ends the session', async () => {
    const { clock, connect } = setup({ streamOpensPerSecond: 10, streamOpensBurst: 20 });
    const { client, closed } = connect();
    await client.ready();
    for (let round = 0; round < 3; round++) {
      await Promise.all(Array.from({ length: 15 }, () => echo(client, 10)));
      clock.advance(2000);
    }
    // A burst past the limit: the extra opens fail with `limit`, the session stays.
    const burst = await Promise.all(
      Array.from({ length: 30 }, () =>
        client.open({ kind: 'tcp', host: 'example.test', port: 80 }).then(
          (stream) => (stream.destroy(), 'opened'),
          (e: StreamError) => e.code,
        ),
      ),
    );
    expect(burst.filter((r) => r === 'opened')).toHaveLength(20);
    expect(burst.filter((r) => r === 'limit')).toHaveLength(10);
    expect(client.closed).toBe(false);
    // Opening on and on while refused is a flood: the session ends.
    const opens = Array.from({ length: 100 }, () =>
      client.open({ kind: 'tcp', host: 'example.test', port: 80 }).catch((e: StreamError) => e),
    );
    expect(await closed).toMatchObject({ code: SESSION_LIMIT_CODE });
    const results = await Promise.all(opens);
    expect(results.some((r) => r instanceof StreamError)).toBe(true);
  });

  it('more streams at once than allowed fail with limit and keep the session', async () => {
    const staticKey = generateStaticKeyPair();
    const never: Dialer = { dial: () => new Promise<ByteStream>(() => undefined) };
    const exit = new ExitEngine({
      certificate: developmentCertificateFor(staticKey.publicKey),
      staticKey,
      dialer: never,
      maxStreamsPerSession: 4,
    });
    const [clientSide, exitSide] = memoryLinkPair();
    exit.addLink(exitSide);
    const client = new TunnelClient({
      trust: DEVELOPMENT_TRUST,
      link: clientSide,
      exitKey: staticKey.publicKey,
    });
    await client.ready();
    const opens = Array.from({ length: 6 }, () =>
      client.open({ kind: 'tcp', host: 'slow.test', port: 80 }).catch((e: StreamError) => e.code),
    );
    expect(await Promise.race([opens[4], opens[5]])).toBe('limit');
    expect(client.closed).toBe(false);
    exit.close();
  });

  it('a dial that never finishes fails with timeout', async () => {
    let dials = 0;
    const never: Dialer = {
      dial: () => {
        dials += 1;
        return new Promise<ByteStream>(() => undefined);
      },
    };
    const { clock, connect } = setup({ dialTimeoutMs: 5000 }, never);
    const { client } = connect();
    await client.ready();
    const open = client.open({ kind: 'tcp', host: 'black-hole.test', port: 80 });
    const outcome = open.catch((e: StreamError) => e.code);
    // The dial's deadline is armed with the dial itself.
    await vi.waitFor(() => expect(dials).toBe(1));
    clock.advance(5000);
    expect(await outcome).toBe('timeout');
    expect(client.closed).toBe(false);
  });

  it('a dial that fails reaches the client with its typed code', async () => {
    const { connect } = setup({}, echoDialer({ 'gone.test': 'dns-failed', 'shut.test': 'refused' }));
    const { client } = connect();
    for (const [host, code] of [
      ['gone.test', 'dns-failed'],
      ['shut.test', 'refused'],
    ] as const) {
      await expect(client.open({ kind: 'tcp', host, port: 80 })).rejects.toMatchObject({ code });
    }
  });

  it('an idle stream is reset with timeout; a busy one is not', async () => {
    const outsides: FakeOutside[] = [];
    const dialer: Dialer = {
      dial: async () => {
        const outside = new FakeOutside();
        outsides.push(outside);
        return outside;
      },
    };
    const { clock, connect } = setup({ streamIdleTimeoutMs: 10_000 }, dialer);
    const { client } = connect();
    const idle = await client.open({ kind: 'tcp', host: 'a.test', port: 80 });
    const busy = await client.open({ kind: 'tcp', host: 'b.test', port: 80 });
    const idleClosed = new Promise<UnderpassError | undefined>((resolve) => idle.once('close', resolve));
    busy.resume();
    for (let i = 0; i < 4; i++) {
      clock.advance(4000);
      outsides[1]!.fire('data', new Uint8Array([i]));
    }
    expect(await idleClosed).toMatchObject({ code: 'timeout' });
    expect(outsides[0]!.closed).toBe(true);
    expect(busy.closed).toBe(false);
  });

  it('throttles a session to its byte rate (clock-driven, no wall time)', async () => {
    const { clock, connect } = setup({ bytesPerSecond: 100_000, bytesBurst: 100_000 });
    const { client } = connect();
    const stream = await client.open({ kind: 'tcp', host: 'example.test', port: 80 });
    let received = 0;
    stream.on('data', (chunk) => (received += chunk.length));
    stream.resume();
    // 300 kB each way is 600 kB of budget: 100 kB burst, then 100 kB/s.
    stream.write(pattern(300_000));
    stream.end();
    for (let i = 0; i < 20; i++) await flush();
    expect(received).toBeLessThan(300_000);
    for (let second = 0; second < 10 && received < 300_000; second++) {
      clock.advance(1000);
      for (let i = 0; i < 20; i++) await flush();
    }
    expect(received).toBe(300_000);
  });

  it('refuses sessions beyond the global maximum', async () => {
    const { connect } = setup({}, echoDialer(), 2);
    const a = connect();
    const b = connect();
    await Promise.all([a.client.ready(), b.client.ready()]);
    const c = connect();
    expect(await c.closed).toMatchObject({ code: 'closed' });
    expect(await echo(a.client, 1000)).toEqual(pattern(1000));
  });
});
