import { describe, expect, it } from 'vitest';
import { withCachedDescriptions, type Description } from '../src/cached-descriptions.js';

/**
 * The wrapper's logic against a connection whose native getters throw if read (real wrtc connections are in
 * loopback-candidates.test.ts and every link test; the crash it avoids is a race no test can aim at).
 */
class NativeConnection {
  onicecandidate: (() => void) | null = null;
  readonly calls: string[] = [];
  private failNext = false;

  get localDescription(): never {
    throw new Error('the native local description was read');
  }
  get remoteDescription(): never {
    throw new Error('the native remote description was read');
  }
  rejectNext(): void {
    this.failNext = true;
  }
  setLocalDescription(description?: Description): Promise<void> {
    return this.settle(`local ${description?.type}`);
  }
  setRemoteDescription(description: Description): Promise<void> {
    return this.settle(`remote ${description.type}`);
  }
  addIceCandidate(candidate: string): Promise<void> {
    // A native method checks its receiver, as wrtc's do.
    if (!(this instanceof NativeConnection)) throw new TypeError('Illegal invocation');
    this.calls.push(`candidate ${candidate}`);
    return Promise.resolve();
  }
  private settle(call: string): Promise<void> {
    this.calls.push(call);
    if (!this.failNext) return Promise.resolve();
    this.failNext = false;
    return Promise.reject(new Error('InvalidStateError'));
  }
}

describe('withCachedDescriptions', () => {
  it('answers each description with what was set, once set, never asking the native side', async () => {
    const native = new NativeConnection();
    const connection = withCachedDescriptions(native);
    expect(connection.localDescription).toBeNull();
    expect(connection.remoteDescription).toBeNull();

    const setting = connection.setRemoteDescription({ type: 'offer', sdp: 'v=0 offer' });
    // Not yet taken by the native side: a candidate arriving now must wait (simple-peer queues it on null).
    expect(connection.remoteDescription).toBeNull();
    await setting;
    expect(connection.remoteDescription).toEqual({ type: 'offer', sdp: 'v=0 offer' });

    await connection.setLocalDescription({ type: 'answer', sdp: 'v=0 answer' });
    expect(connection.localDescription).toEqual({ type: 'answer', sdp: 'v=0 answer' });
    expect(native.calls).toEqual(['remote offer', 'local answer']);
  });

  it('keeps the last description the native side took, not one it refused', async () => {
    const native = new NativeConnection();
    const connection = withCachedDescriptions(native);
    await connection.setLocalDescription({ type: 'offer', sdp: 'first' });
    native.rejectNext();
    await expect(connection.setLocalDescription({ type: 'offer', sdp: 'second' })).rejects.toThrow(
      'InvalidStateError',
    );
    expect(connection.localDescription).toEqual({ type: 'offer', sdp: 'first' });
    // An implicit description (no argument) is not known here: the getter says none, as before any was set.
    await connection.setLocalDescription();
    expect(connection.localDescription).toBeNull();
  });

  it('passes every other property and method through to the connection itself', async () => {
    const native = new NativeConnection();
    const connection = withCachedDescriptions(native);
    const handler = () => undefined;
    connection.onicecandidate = handler;
    expect(native.onicecandidate).toBe(handler);
    await connection.addIceCandidate('candidate:1 1 udp 1 192.0.2.1 9 typ host');
    expect(native.calls).toEqual(['candidate candidate:1 1 udp 1 192.0.2.1 9 typ host']);
  });
});
