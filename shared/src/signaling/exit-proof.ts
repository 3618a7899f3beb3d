/**
 * Proof that an exit holds the secret half of the X25519 key it announces. X25519 cannot sign, so the
 * server plays the other side of a Diffie-Hellman exchange: it sends a fresh ephemeral public key and a
 * nonce, and the exit answers with a MAC keyed by the shared secret. Only the holder of the exit's secret
 * (or of the server's ephemeral secret, which never leaves the server) can compute it. The secret itself is
 * never sent. Runs in Node and in browsers (pure @noble code).
 */
import { x25519 } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesEqual, concatBytes, fromBase64Url, randomBytes, toBase64Url } from '../bytes.js';

/** Bytes of the challenge nonce. */
export const EXIT_PROOF_NONCE_BYTES = 32;
const CONTEXT = new TextEncoder().encode('underpass signaling exit-key proof v1');

/** What the server sends an exit after its hello: base64url (no padding) of 32 bytes each. */
export type ExitKeyChallenge = { serverKey: string; nonce: string };

/** The server's half of one challenge; `secret` stays on the server. */
export type IssuedChallenge = { challenge: ExitKeyChallenge; secret: Uint8Array };

export function issueExitKeyChallenge(): IssuedChallenge {
  const secret = x25519.utils.randomSecretKey();
  return {
    secret,
    challenge: {
      serverKey: toBase64Url(x25519.getPublicKey(secret)),
      nonce: toBase64Url(randomBytes(EXIT_PROOF_NONCE_BYTES)),
    },
  };
}

/**
 * The MAC both sides compute. Binding both public keys means a proof made for one exit key or one server
 * key is worthless for any other.
 */
function mac(shared: Uint8Array, nonce: Uint8Array, exitKey: Uint8Array, serverKey: Uint8Array): Uint8Array {
  return hmac(sha256, shared, concatBytes(CONTEXT, nonce, exitKey, serverKey));
}

/**
 * (Exit side) answers a challenge with the exit's X25519 secret key. Throws on a challenge that is not two
 * well-formed 32-byte values or whose server key is of low order.
 */
export function proveExitKey(exitSecretKey: Uint8Array, challenge: ExitKeyChallenge): string {
  const serverKey = fromBase64Url(challenge.serverKey);
  const nonce = fromBase64Url(challenge.nonce);
  if (serverKey?.length !== 32 || nonce?.length !== EXIT_PROOF_NONCE_BYTES)
    throw new RangeError('malformed exit-key challenge');
  const exitKey = x25519.getPublicKey(exitSecretKey);
  const shared = x25519.getSharedSecret(exitSecretKey, serverKey);
  return toBase64Url(mac(shared, nonce, exitKey, serverKey));
}

/** (Server side) true when `proof` answers `issued` for the exit announcing `exitKey`. Never throws. */
export function verifyExitKeyProof(issued: IssuedChallenge, exitKey: Uint8Array, proof: string): boolean {
  const given = fromBase64Url(proof);
  const serverKey = fromBase64Url(issued.challenge.serverKey);
  const nonce = fromBase64Url(issued.challenge.nonce);
  if (given?.length !== 32 || !serverKey || !nonce) return false;
  let shared: Uint8Array;
  try {
    // Throws for low-order exit keys, whose shared secret anyone could compute.
    shared = x25519.getSharedSecret(issued.secret, exitKey);
  } catch {
    return false;
  }
  return bytesEqual(mac(shared, nonce, exitKey, serverKey), given);
}
