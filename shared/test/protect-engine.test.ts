import { describe, expect, it } from 'vitest';
import { UnderpassError } from '../src/errors.js';
import { ProtectEngine, type ProtectSignaling } from '../src/engines/protect.js';
import { DEVELOPMENT_DIRECTORY_KEYS } from '../src/trust/index.js';

/** A signaling client that never gets a path: enough to drive ProtectEngine's failure paths. */
function fakeSignaling(behaviour: { connect: 'ok' | 'fail' }) {
  const record = { connects: 0, closes: 0, pathRequests: 0 };
  const signaling: ProtectSignaling = {
    connected: true,
    async connect() {
      record.connects += 1;
      if (behaviour.connect === 'fail') throw new UnderpassError('connect-failed', 'no broker');
      return 'peer-1';
    },
    async requestPath() {
      record.pathRequests += 1;
      throw new UnderpassError('no-exit-available', 'no exit is connected');
    },
    signal() {},
    linkClosed() {},
    on() {
      return undefined;
    },
    close() {
      record.closes += 1;
    },
  };
  return { signaling, record };
}

const noPeer = () => {
  throw new Error('no WebRTC in this test');
};

describe('ProtectEngine', () => {
  it('makes a new signaling client for each try after one fails, and closes the ones it made', async () => {
    const made: ReturnType<typeof fakeSignaling>[] = [];
    const engine = new ProtectEngine({
      directoryKeys: DEVELOPMENT_DIRECTORY_KEYS,
      createSignaling: () => {
        const fake = fakeSignaling({ connect: 'fail' });
        made.push(fake);
        return fake.signaling;
      },
      createPeer: noPeer,
      initialAttempts: 3,
    });
    await expect(engine.start()).rejects.toMatchObject({ code: 'connect-failed' });
    expect(made).toHaveLength(3);
    expect(made.every((fake) => fake.record.closes === 1)).toBe(true);
    expect(engine.state).toMatchObject({ status: 'error', code: 'connect-failed' });
  });

  it('keeps one connected client across tries and reports the broker error', async () => {
    const fake = fakeSignaling({ connect: 'ok' });
    let made = 0;
    const engine = new ProtectEngine({
      directoryKeys: DEVELOPMENT_DIRECTORY_KEYS,
      createSignaling: () => {
        made += 1;
        return fake.signaling;
      },
      createPeer: noPeer,
      initialAttempts: 2,
    });
    await expect(engine.start()).rejects.toMatchObject({ code: 'no-exit-available' });
    expect(made).toBe(1);
    expect(fake.record.pathRequests).toBe(2);
    engine.stop();
    expect(fake.record.closes).toBe(1);
    expect(engine.state.status).toBe('off');
  });

  it('refuses streams while no path is up and counts them (the kill switch)', async () => {
    const engine = new ProtectEngine({
      directoryKeys: DEVELOPMENT_DIRECTORY_KEYS,
      createSignaling: () => fakeSignaling({ connect: 'ok' }).signaling,
      createPeer: noPeer,
    });
    await expect(engine.open({ kind: 'tcp', host: 'example.org', port: 80 })).rejects.toMatchObject({
      code: 'unreachable',
    });
    await expect(engine.open({ kind: 'tcp', host: 'example.org', port: 443 })).rejects.toMatchObject({
      code: 'unreachable',
    });
    expect(engine.stats()).toMatchObject({ blocked: 2, blockedWhileReconnecting: 0, bytesUp: 0 });
  });

  it('needs a way to reach the broker', () => {
    expect(
      () => new ProtectEngine({ directoryKeys: DEVELOPMENT_DIRECTORY_KEYS, createPeer: noPeer }),
    ).toThrow(UnderpassError);
  });
});
