import { describe, expect, it } from 'vitest';
import { randomBytes } from '@underpass/shared/bytes';
import { nobleAead } from '@underpass/shared/tunnel';
import { nodeAead } from '../src/node-aead.js';

describe('node:crypto ChaCha20-Poly1305 matches @noble/ciphers', () => {
  it('seals to the same bytes and opens the other’s output', () => {
    for (const size of [0, 1, 15, 16, 17, 1000, 16 * 1024 + 5]) {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const ad = randomBytes(size % 40);
      const plaintext = randomBytes(size);
      const sealed = nodeAead.seal(key, nonce, ad, plaintext);
      expect(sealed).toEqual(nobleAead.seal(key, nonce, ad, plaintext));
      expect(nobleAead.open(key, nonce, ad, sealed)).toEqual(plaintext);
      expect(nodeAead.open(key, nonce, ad, sealed)).toEqual(plaintext);
    }
  });

  it('refuses a flipped bit, a wrong nonce, wrong associated data and a short message', () => {
    const key = randomBytes(32);
    const nonce = randomBytes(12);
    const sealed = nodeAead.seal(key, nonce, new Uint8Array(0), randomBytes(100));
    const flipped = sealed.slice();
    flipped[3]! ^= 1;
    expect(nodeAead.open(key, nonce, new Uint8Array(0), flipped)).toBeUndefined();
    expect(nodeAead.open(key, randomBytes(12), new Uint8Array(0), sealed)).toBeUndefined();
    expect(nodeAead.open(key, nonce, Uint8Array.of(1), sealed)).toBeUndefined();
    expect(nodeAead.open(key, nonce, new Uint8Array(0), sealed.subarray(0, 10))).toBeUndefined();
  });
});
