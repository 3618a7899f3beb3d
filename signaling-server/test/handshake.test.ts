/**
 * The handshake rules of Broker.admit, without sockets: hello first, an exit's challenge and proof, and
 * everything after for `handle`. A fake `send` records what the peer would get.
 */
import { describe, expect, it } from 'vitest';
import { proveExitKey } from '@underpass/shared/signaling';
import type { HelloMessage, PeerMessage, ServerMessage } from '@underpass/shared/signaling';
import { Broker, HANDSHAKE_START, type Admission, type HandshakeStage } from '../src/broker.js';
import { MemoryRegistry } from '../src/registry.js';
import { exitSecretOf, newExitKey } from './helpers.js';

const PEER = 'peer'.padEnd(22, '0');

function setup() {
  const sent: ServerMessage[] = [];
  const broker = new Broker({
    registry: new MemoryRegistry(),
    maxLinksPerClient: 8,
    send: (peerId, msg) => {
      if (peerId === PEER) sent.push(msg);
    },
  });
  const admit = (stage: HandshakeStage, msg: PeerMessage): Admission => broker.admit(PEER, stage, msg);
  return { sent, admit };
}

/** Says an exit's hello and returns the stage it leaves, with the challenge the broker sent. */
function exitHello(exitKey: string) {
  const { sent, admit } = setup();
  const hello: HelloMessage = { type: 'hello', v: 1, role: 'exit', exitKey };
  const admission = admit(HANDSHAKE_START, hello);
  if (admission.action !== 'prove') throw new Error(`expected prove, got ${admission.action}`);
  const challenge = sent.shift();
  if (challenge?.type !== 'challenge') throw new Error('no challenge sent');
  return { sent, admit, hello, stage: admission.stage, challenge };
}

describe('Broker.admit', () => {
  it('refuses anything but hello first', () => {
    const { sent, admit } = setup();
    expect(admit(HANDSHAKE_START, { type: 'heartbeat' })).toEqual({
      action: 'refuse',
      why: 'no-hello',
      closeReason: 'no hello',
    });
    expect(sent).toEqual([
      { type: 'error', code: 'not-allowed', message: 'the first message must be hello' },
    ]);
  });

  it('admits a client or relay hello straight to join', () => {
    const { sent, admit } = setup();
    const hello: HelloMessage = { type: 'hello', v: 1, role: 'relay', capacity: 3 };
    expect(admit(HANDSHAKE_START, hello)).toEqual({ action: 'join', hello, stage: { step: 'admitted' } });
    expect(sent).toEqual([]);
  });

  it('challenges an exit, and joins it with its hello once the proof verifies', () => {
    const exitKey = newExitKey();
    const { sent, admit, hello, stage, challenge } = exitHello(exitKey);
    expect(challenge.serverKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(challenge.nonce).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(stage.step).toBe('proving');
    const proof = proveExitKey(exitSecretOf(exitKey), challenge);
    expect(admit(stage, { type: 'prove', proof })).toEqual({
      action: 'join',
      hello,
      stage: { step: 'admitted' },
    });
    expect(sent).toEqual([]);
  });

  it('refuses a proof made with another key’s secret', () => {
    const { sent, admit, stage, challenge } = exitHello(newExitKey());
    const proof = proveExitKey(exitSecretOf(newExitKey()), challenge);
    expect(admit(stage, { type: 'prove', proof })).toEqual({
      action: 'refuse',
      why: 'bad-proof',
      closeReason: 'bad proof',
    });
    expect(sent).toEqual([
      { type: 'error', code: 'not-allowed', message: 'the proof does not match the announced exitKey' },
    ]);
  });

  it('refuses a proof answering another challenge (a replay)', () => {
    const exitKey = newExitKey();
    const first = exitHello(exitKey);
    const second = exitHello(exitKey);
    const replayed = proveExitKey(exitSecretOf(exitKey), first.challenge);
    expect(second.admit(second.stage, { type: 'prove', proof: replayed })).toMatchObject({
      action: 'refuse',
      why: 'bad-proof',
    });
  });

  it('refuses anything but prove while an exit owes its proof', () => {
    const { sent, admit, stage } = exitHello(newExitKey());
    expect(admit(stage, { type: 'heartbeat' })).toEqual({
      action: 'refuse',
      why: 'bad-proof',
      closeReason: 'no proof',
    });
    expect(sent).toEqual([
      { type: 'error', code: 'not-allowed', message: 'an exit must answer the challenge with prove' },
    ]);
  });

  it('hands every message after the handshake to handle, a second hello included', () => {
    const { sent, admit } = setup();
    const admitted: HandshakeStage = { step: 'admitted' };
    expect(admit(admitted, { type: 'hello', v: 1, role: 'client' })).toEqual({ action: 'handle' });
    expect(admit(admitted, { type: 'heartbeat' })).toEqual({ action: 'handle' });
    expect(sent).toEqual([]);
  });
});
