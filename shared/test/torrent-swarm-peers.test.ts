import { describe, expect, it } from 'vitest';
import {
  MAX_SWARM_PEERS,
  MAX_SWARM_PEERS_MESSAGE_BYTES,
  SWARM_PEERS_EXTENSION,
  decodeSwarmPeers,
  encodeSwarmPeers,
  sendSwarmPeers,
  swarmPeersExtension,
  type ExtensionWire,
} from '@underpass/shared/torrent';

describe('the swarm-peers extension', () => {
  it('round-trips a count and rejects anything that is not {"peers": N} within its bounds', () => {
    expect(decodeSwarmPeers(encodeSwarmPeers(0))).toBe(0);
    expect(decodeSwarmPeers(encodeSwarmPeers(42))).toBe(42);
    expect(decodeSwarmPeers(new TextEncoder().encode('{"peers":3,"later":"field"}'))).toBe(3);
    for (const bad of [
      '3',
      '[3]',
      'null',
      '{"peers":"3"}',
      '{"peers":1.5}',
      '{"peers":-1}',
      `{"peers":${MAX_SWARM_PEERS + 1}}`,
      '{}',
      'not json',
      `{"peers":1,"pad":"${'x'.repeat(MAX_SWARM_PEERS_MESSAGE_BYTES)}"}`,
    ]) {
      expect(decodeSwarmPeers(new TextEncoder().encode(bad)), bad).toBeUndefined();
    }
    expect(decodeSwarmPeers(Uint8Array.of(0x7b, 0xff, 0x7d))).toBeUndefined(); // not UTF-8
  });

  it('is a wire extension by name, and is sent only to a user that announced it', () => {
    const heard: number[] = [];
    const Extension = swarmPeersExtension((peers) => heard.push(peers));
    expect((Extension.prototype as unknown as { name: string }).name).toBe(SWARM_PEERS_EXTENSION);
    const sent: Uint8Array[] = [];
    const wire: ExtensionWire & { peerExtendedMapping: Record<string, number> } = {
      peerExtendedMapping: {},
      extended: (_name, message) => void sent.push(message),
    };
    const extension = new Extension(wire);
    expect(sendSwarmPeers(wire, 5)).toBe(false);
    wire.peerExtendedMapping[SWARM_PEERS_EXTENSION] = 3;
    expect(sendSwarmPeers(wire, 5)).toBe(true);
    extension.onMessage(sent[0]!);
    extension.onMessage(new TextEncoder().encode('{"peers":"many"}'));
    expect(heard).toEqual([5]);
  });
});
