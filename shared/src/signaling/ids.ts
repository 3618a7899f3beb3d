/**
 * Identifiers and key encodings of the signaling protocol. Written against Web Crypto and plain arrays only,
 * so the same code runs in Node, in pages and in extension workers (no Buffer, no btoa on binary strings).
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const DECODE = new Map<string, number>([...ALPHABET].map((c, i) => [c, i]));

/** Bytes of randomness in a peerId or linkId: 128 bits, not guessable by another peer. */
export const RANDOM_ID_BYTES = 16;
/** Length in characters of a base64url (no padding) X25519 public key. */
export const EXIT_KEY_LENGTH = 43;

export function base64UrlEncode(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out +=
      ALPHABET[(n >> 18) & 63]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[(n >> 18) & 63]! + ALPHABET[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[(n >> 18) & 63]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]!;
  }
  return out;
}

/**
 * Strict base64url decoding: no padding, no whitespace, and the unused low bits of the last character must
 * be zero. Strictness matters because exit keys are compared as strings: two spellings of one key would
 * let a peer register the "same" exit twice.
 */
export function base64UrlDecode(text: string): Uint8Array | undefined {
  if (text.length % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (const c of text) {
    const v = DECODE.get(c);
    if (v === undefined) return undefined;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
      acc &= (1 << bits) - 1;
    }
  }
  if (acc !== 0) return undefined;
  return out;
}

/** An unguessable identifier: base64url of 16 bytes from the platform's CSPRNG (22 characters). */
export function randomId(): string {
  const bytes = new Uint8Array(RANDOM_ID_BYTES);
  globalThis.crypto.getRandomValues(bytes);
  return base64UrlEncode(bytes);
}

/** True when `text` is the canonical base64url (no padding) spelling of a 32-byte X25519 public key. */
export function isExitKey(text: string): boolean {
  if (text.length !== EXIT_KEY_LENGTH) return false;
  return base64UrlDecode(text)?.length === 32;
}

export function encodeExitKey(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new RangeError('an X25519 public key is 32 bytes');
  return base64UrlEncode(publicKey);
}

export function decodeExitKey(exitKey: string): Uint8Array | undefined {
  return isExitKey(exitKey) ? base64UrlDecode(exitKey) : undefined;
}
