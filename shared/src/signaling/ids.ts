/**
 * Identifiers and key encodings of the signaling protocol. Written against Web Crypto and plain arrays only,
 * so the same code runs in Node, in pages and in extension workers (no Buffer, no btoa on binary strings).
 */
import { fromBase64Url, randomBytes, toBase64Url } from '../bytes.js';

/** Bytes of randomness in a peerId or linkId: 128 bits, not guessable by another peer. */
export const RANDOM_ID_BYTES = 16;
/** Length in characters of a base64url (no padding) X25519 public key. */
export const EXIT_KEY_LENGTH = 43;

/** An unguessable identifier: base64url of 16 bytes from the platform's CSPRNG (22 characters). */
export function randomId(): string {
  return toBase64Url(randomBytes(RANDOM_ID_BYTES));
}

/** True when `text` is the canonical base64url (no padding) spelling of a 32-byte X25519 public key. */
export function isExitKey(text: string): boolean {
  if (text.length !== EXIT_KEY_LENGTH) return false;
  return fromBase64Url(text)?.length === 32;
}

export function encodeExitKey(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new RangeError('an X25519 public key is 32 bytes');
  return toBase64Url(publicKey);
}

export function decodeExitKey(exitKey: string): Uint8Array | undefined {
  return isExitKey(exitKey) ? fromBase64Url(exitKey) : undefined;
}
