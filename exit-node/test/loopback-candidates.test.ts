import { EventEmitter } from 'node:events';
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import type { SimplePeerLike } from '@underpass/shared/links';
import {
  candidateAddress,
  isLoopbackAddress,
  signalLoopbackCandidatesLast,
} from '../src/loopback-candidates.js';
import { nodePeerFactory } from '../src/node-peer.js';

const line = (address: string, port = 50000) =>
  `candidate:1510613869 1 udp 2122194687 ${address} ${port} typ host generation 0 ufrag 0g/t network-id 1`;
const candidate = (address: string, port?: number) => ({
  type: 'candidate',
  candidate: { candidate: line(address, port), sdpMLineIndex: 0, sdpMid: '0' },
});
const addressOf = (signal: unknown) =>
  candidateAddress((signal as { candidate: { candidate: string } }).candidate.candidate);

/** A stand-in for simple-peer's emitter: what it emits, and what listeners saw. */
function fakePeer() {
  const peer = new EventEmitter();
  const signalled: unknown[] = [];
  peer.on('signal', (signal) => signalled.push(signal));
  signalLoopbackCandidatesLast(peer);
  return { peer, signalled };
}

describe('loopback ICE candidates (pure logic)', () => {
  it('reads the address of a candidate attribute, with or without its a= prefix', () => {
    expect(candidateAddress(line('198.51.100.1'))).toBe('198.51.100.1');
    expect(candidateAddress(`a=${line('::1')}`)).toBe('::1');
    expect(candidateAddress('candidate:1 1 udp 2122194687 10.0.0.1')).toBeUndefined();
    expect(candidateAddress('not a candidate at all')).toBeUndefined();
  });

  it('knows loopback addresses from others', () => {
    for (const address of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1'])
      expect(isLoopbackAddress(address), address).toBe(true);
    for (const address of [
      '198.51.100.1',
      '128.0.0.1',
      '10.127.0.1',
      '::2',
      '::ffff:127.0.0.1',
      'host.local',
    ])
      expect(isLoopbackAddress(address), address).toBe(false);
  });

  it('signals other candidates at once and drops loopback ones, before or after them', () => {
    const { peer, signalled } = fakePeer();
    peer.emit('signal', candidate('127.0.0.1', 1));
    peer.emit('signal', candidate('198.51.100.1'));
    peer.emit('signal', candidate('127.0.0.1', 2));
    peer.emit('_iceComplete');
    peer.emit('signal', candidate('::1'));
    expect(signalled.map(addressOf)).toEqual(['198.51.100.1']);
  });

  it('signals the loopback candidates, in order, when gathering ends with nothing else', () => {
    const { peer, signalled } = fakePeer();
    peer.emit('signal', candidate('127.0.0.1', 1));
    peer.emit('signal', candidate('::1', 2));
    expect(signalled).toEqual([]);
    peer.emit('_iceComplete');
    expect(signalled).toEqual([candidate('127.0.0.1', 1), candidate('::1', 2)]);
    // Gathering ended with only loopback: a late one goes out too (it is all there is).
    peer.emit('signal', candidate('127.0.0.1', 3));
    expect(signalled).toHaveLength(3);
  });

  it('signals offers, answers and other signals as they are', () => {
    const { peer, signalled } = fakePeer();
    peer.emit('signal', { type: 'offer', sdp: 'v=0\r\n' });
    peer.emit('signal', { renegotiate: true });
    expect(signalled).toEqual([{ type: 'offer', sdp: 'v=0\r\n' }, { renegotiate: true }]);
  });
});

describe('loopback ICE candidates on @roamhq/wrtc (real WebRTC on this machine)', () => {
  const peers: SimplePeerLike[] = [];
  afterEach(() => {
    for (const peer of peers.splice(0)) peer.destroy();
  });

  it('connects two Node peers, and signals loopback candidates only on a host that has nothing else', async () => {
    const createPeer = nodePeerFactory();
    const a = createPeer({ initiator: true });
    const b = createPeer({ initiator: false });
    peers.push(a, b);
    const addresses: string[] = [];
    const descriptions: string[] = [];
    const noteCandidates = (signal: unknown) => {
      const s = signal as { type?: string; sdp?: string; candidate?: { candidate: string } };
      if (s.type === 'candidate' && s.candidate)
        addresses.push(candidateAddress(s.candidate.candidate) ?? '?');
      if (s.sdp !== undefined) descriptions.push(s.type ?? '?');
      // The offer and answer go out as created (cached-descriptions.ts): every candidate is trickled.
      expect(s.sdp ?? '').not.toContain('a=candidate:');
    };
    a.on('signal', (data) => {
      noteCandidates(data);
      b.signal(data);
    });
    b.on('signal', (data) => {
      noteCandidates(data);
      a.signal(data);
    });
    await Promise.all(
      [a, b].map(
        (peer) =>
          new Promise<void>((resolve, reject) => {
            peer.on('connect', resolve);
            peer.on('error', reject);
          }),
      ),
    );
    const onlyLoopback = Object.values(networkInterfaces())
      .flat()
      .every((info) => info === undefined || info.internal);
    expect(descriptions).toEqual(['offer', 'answer']);
    expect(addresses.length).toBeGreaterThan(0);
    if (onlyLoopback) expect(addresses.every(isLoopbackAddress)).toBe(true);
    else expect(addresses.filter(isLoopbackAddress)).toEqual([]);
  });
});
