/** The exit-key proof (exit-proof.ts): both sides of the exchange, and what the server refuses. */
import { x25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, fromBase64Url, toBase64Url } from '../src/bytes.js';
import { issueExitKeyChallenge, proveExitKey, verifyExitKeyProof } from '../src/signaling/exit-proof.js';

function exitKeys() {
  const secret = x25519.utils.randomSecretKey();
  return { secret, publicKey: x25519.getPublicKey(secret) };
}

describe('exit-key proof', () => {
  it('verifies a proof made with the secret of the announced key', () => {
    const exit = exitKeys();
    const issued = issueExitKeyChallenge();
    const proof = proveExitKey(exit.secret, issued.challenge);
    expect(verifyExitKeyProof(issued, exit.publicKey, proof)).toBe(true);
  });

  it('refuses a proof for another key, for another challenge, or that is not 32 bytes', () => {
    const exit = exitKeys();
    const other = exitKeys();
    const issued = issueExitKeyChallenge();
    expect(verifyExitKeyProof(issued, exit.publicKey, proveExitKey(other.secret, issued.challenge))).toBe(
      false,
    );
    const earlier = issueExitKeyChallenge();
    expect(verifyExitKeyProof(issued, exit.publicKey, proveExitKey(exit.secret, earlier.challenge))).toBe(
      false,
    );
    expect(verifyExitKeyProof(issued, exit.publicKey, 'not base64url!')).toBe(false);
    expect(verifyExitKeyProof(issued, exit.publicKey, toBase64Url(new Uint8Array(16)))).toBe(false);
  });

  it('refuses a low-order exit key, whose shared secret anyone knows', () => {
    const issued = issueExitKeyChallenge();
    const { nonce, serverKey } = issued.challenge;
    const context = new TextEncoder().encode('underpass signaling exit-key proof v1');
    /** The MAC of PROTOCOL.md, computed by hand from a given shared secret. */
    const macFor = (shared: Uint8Array, exitKey: Uint8Array) =>
      toBase64Url(
        hmac(sha256, shared, concatBytes(context, fromBase64Url(nonce)!, exitKey, fromBase64Url(serverKey)!)),
      );
    // The recipe is right: with a real key's shared secret it is accepted…
    const exit = exitKeys();
    const shared = x25519.getSharedSecret(exit.secret, fromBase64Url(serverKey)!);
    expect(verifyExitKeyProof(issued, exit.publicKey, macFor(shared, exit.publicKey))).toBe(true);
    // …and for a low-order key the shared secret is all zeros, which anyone could use.
    const zero = new Uint8Array(32);
    const forged = macFor(new Uint8Array(32), zero);
    expect(verifyExitKeyProof(issued, zero, forged)).toBe(false);
  });

  it('will not answer a malformed challenge', () => {
    const exit = exitKeys();
    const { challenge } = issueExitKeyChallenge();
    expect(() => proveExitKey(exit.secret, { ...challenge, nonce: 'AAAA' })).toThrow(RangeError);
    expect(() => proveExitKey(exit.secret, { ...challenge, serverKey: '' })).toThrow(RangeError);
  });
});
