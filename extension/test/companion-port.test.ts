import { describe, expect, it } from 'vitest';
import { CompanionPort, describeNativeError, type NativePortLike } from '../lib/companion-port';

/** A native port driven by the test: what the companion would say, and how the browser would hang up. */
class FakePort implements NativePortLike {
  private messageListeners: ((message: unknown) => void)[] = [];
  private disconnectListeners: (() => void)[] = [];
  disconnected = false;
  onMessage = { addListener: (l: (message: unknown) => void) => this.messageListeners.push(l) };
  onDisconnect = { addListener: (l: () => void) => this.disconnectListeners.push(l) };
  postMessage(): void {}
  disconnect(): void {
    this.disconnected = true;
  }
  say(message: unknown): void {
    for (const l of this.messageListeners) l(message);
  }
  hangUp(): void {
    for (const l of this.disconnectListeners) l();
  }
}

const READY = { type: 'ready', version: 1, socksPort: 1080, dataPort: 4000, secret: 'x'.repeat(32) };

function setup(readyTimeoutMs = 1_000) {
  const port = new FakePort();
  let lastError: string | undefined;
  const companion = new CompanionPort({
    connect: () => port,
    lastError: () => lastError,
    extensionId: 'abcdefghijklmnopabcdefghijklmnop',
    readyTimeoutMs,
  });
  return { port, companion, setLastError: (text: string) => (lastError = text) };
}

describe('CompanionPort', () => {
  it('resolves with the ready line', async () => {
    const { port, companion } = setup();
    const opened = companion.open();
    port.say({ type: 'status', tunnel: false, connections: 0, blocked: 0 });
    port.say(READY);
    expect(await opened).toEqual({ ok: true, ready: READY });
  });

  it('explains a missing host with the install command', async () => {
    const { port, companion, setLastError } = setup();
    const opened = companion.open();
    setLastError('Specified native messaging host not found.');
    port.hangUp();
    const result = await opened;
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.failure.code).toBe('companion-missing');
    expect(result.failure.reason).toContain('underpass-companion install');
    expect(result.failure.reason).toContain('abcdefghijklmnopabcdefghijklmnop');
    // The way out where native messaging cannot work at all, in one sentence.
    expect(result.failure.reason).toContain('underpass-companion serve');
    expect(result.failure.reason.length).toBeLessThanOrEqual(500);
  });

  it('rejects a malformed ready line and a flood of junk', async () => {
    const { port, companion } = setup();
    const opened = companion.open();
    port.say({ ...READY, socksPort: 70_000 });
    for (let i = 0; i < 20; i += 1) port.say({ type: 'noise', i });
    const result = await opened;
    expect(result).toMatchObject({ ok: false, failure: { code: 'companion-protocol' } });
    expect(port.disconnected).toBe(true);
  });

  it('passes on the companion’s own start error', async () => {
    const { port, companion } = setup();
    const opened = companion.open();
    port.say({ type: 'error', code: 'start-failed', message: 'EADDRINUSE' });
    expect(await opened).toMatchObject({ ok: false, failure: { code: 'start-failed' } });
  });

  it('times out when the companion says nothing', async () => {
    const { companion } = setup(20);
    expect(await companion.open()).toMatchObject({ ok: false, failure: { code: 'companion-timeout' } });
  });

  it('reports a later disconnect, but not one it caused', async () => {
    const first = setup();
    const opened = first.companion.open();
    first.port.say(READY);
    await opened;
    const closed: string[] = [];
    first.companion.on('closed', (failure) => closed.push(failure.code));
    first.setLastError('Native host has exited.');
    first.port.hangUp();
    expect(closed).toEqual(['companion-exited']);

    const second = setup();
    const opened2 = second.companion.open();
    second.port.say(READY);
    await opened2;
    second.companion.on('closed', (failure) => closed.push(failure.code));
    second.companion.close();
    second.port.hangUp();
    expect(closed).toEqual(['companion-exited']);
  });

  it('maps browser error strings to codes', () => {
    expect(
      describeNativeError('Access to the specified native messaging host is forbidden.', 'id').code,
    ).toBe('companion-forbidden');
    expect(describeNativeError(undefined, 'id').code).toBe('companion-failed');
  });
});
