/**
 * Directory keys: the Ed25519 keys a network signs its exits' certificates with. Clients ship the public
 * halves; the secret halves stay with the network's operators (exit-node/src/directory-tool.ts).
 * Every primitive is @noble/curves' Ed25519 (RFC 8032), verified strictly (no ZIP-215 leniency).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, fromBase64Url, toBase64Url } from '../bytes.js';
import {
  CERTIFICATE_SIGNING_CONTEXT,
  DIRECTORY_KEY_ID_BYTES,
  encodeCertificate,
  encodeCertificateBody,
  type CertificateFields,
} from './certificate.js';

export const DIRECTORY_KEY_BYTES = 32;
/** base64url (no padding) of 32 bytes. */
export const DIRECTORY_KEY_TEXT_LENGTH = 43;
/** Directory keys one client trusts at once: a network has a few, rotated, never hundreds. */
export const MAX_DIRECTORY_KEYS = 16;

export interface DirectoryKeyPair {
  /** The Ed25519 secret key (RFC 8032 seed), 32 bytes. */
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

export function generateDirectoryKeyPair(): DirectoryKeyPair {
  const { secretKey, publicKey } = ed25519.keygen();
  return { secretKey, publicKey };
}

export function directoryKeyPairFromSecret(secretKey: Uint8Array): DirectoryKeyPair {
  if (secretKey.length !== DIRECTORY_KEY_BYTES) throw new RangeError('a directory secret key is 32 bytes');
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
}

/** The id a certificate names its signer by: the first 8 bytes of SHA-256 of the public key. */
export function directoryKeyId(publicKey: Uint8Array): Uint8Array {
  return sha256(publicKey).slice(0, DIRECTORY_KEY_ID_BYTES);
}

/** The public key as people and configuration carry it: canonical base64url, 43 characters. */
export function encodeDirectoryKey(publicKey: Uint8Array): string {
  if (publicKey.length !== DIRECTORY_KEY_BYTES) throw new RangeError('a directory key is 32 bytes');
  return toBase64Url(publicKey);
}

/** One public key from its text, or why not. */
export function decodeDirectoryKey(
  text: string,
): { ok: true; key: Uint8Array } | { ok: false; reason: string } {
  const bytes = text.length === DIRECTORY_KEY_TEXT_LENGTH ? fromBase64Url(text) : undefined;
  if (!bytes || bytes.length !== DIRECTORY_KEY_BYTES)
    return { ok: false, reason: `not a directory key (${DIRECTORY_KEY_TEXT_LENGTH} base64url characters)` };
  if (!ed25519.utils.isValidPublicKey(bytes, false))
    return { ok: false, reason: 'not an Ed25519 public key' };
  return { ok: true, key: bytes };
}

export type DirectoryKeysParse =
  { ok: true; keys: Uint8Array[] } | { ok: false; entry: string; reason: string };

/**
 * A list of public keys separated by spaces, commas or line breaks (the options page's box, the build's
 * UNDERPASS_DIRECTORY_KEYS). Duplicates are dropped; more than MAX_DIRECTORY_KEYS is an error.
 */
export function parseDirectoryKeys(text: string): DirectoryKeysParse {
  const keys: Uint8Array[] = [];
  const seen = new Set<string>();
  for (const entry of text.split(/[\s,]+/)) {
    if (!entry) continue;
    const decoded = decodeDirectoryKey(entry);
    if (!decoded.ok) return { ok: false, entry: entry.slice(0, 60), reason: decoded.reason };
    if (seen.has(entry)) continue;
    seen.add(entry);
    keys.push(decoded.key);
    if (keys.length > MAX_DIRECTORY_KEYS)
      return { ok: false, entry, reason: `more than ${MAX_DIRECTORY_KEYS} directory keys` };
  }
  return { ok: true, keys };
}

/** What the issuer says about the exit; the directory key id is the signer's own. */
export type CertificateRequest = Omit<CertificateFields, 'directoryKeyId'>;

/** Signs a certificate. Throws RangeError on fields the format does not allow. */
export function issueCertificate(request: CertificateRequest, directory: DirectoryKeyPair): Uint8Array {
  const body = encodeCertificateBody({ ...request, directoryKeyId: directoryKeyId(directory.publicKey) });
  const signature = ed25519.sign(concatBytes(CERTIFICATE_SIGNING_CONTEXT, body), directory.secretKey);
  return encodeCertificate(body, signature);
}

/** Strict RFC 8032 verification of a certificate body's signature. */
export function verifyCertificateSignature(
  body: Uint8Array,
  signature: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  try {
    return ed25519.verify(signature, concatBytes(CERTIFICATE_SIGNING_CONTEXT, body), publicKey, {
      zip215: false,
    });
  } catch {
    return false;
  }
}
