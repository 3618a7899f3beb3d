/**
 * The exit certificate's byte format (PROTOCOL.md §3, "Exit certificates"): what a directory key signs about
 * one exit. Fixed-width fields, one length-prefixed text, one signature; the decoder accepts exactly one
 * byte string per certificate, so a certificate cannot be re-spelt under the same signature.
 */
import { concatBytes, fromUtf8, utf8, view } from '../bytes.js';

export const CERTIFICATE_VERSION = 1;
export const DIRECTORY_KEY_ID_BYTES = 8;
export const ED25519_SIGNATURE_BYTES = 64;
export const X25519_KEY_BYTES = 32;
/** The policy summary, as the exit announces it (signaling's MAX_POLICY_LENGTH is 512 characters). */
export const MAX_POLICY_CHARS = 512;
export const MAX_POLICY_BYTES = 1024;
/** No certificate is valid longer than this: a leaked exit key stops working within the year at most. */
export const MAX_VALIDITY_SECONDS = 400 * 86_400;
/** 9999-12-31T23:59:59Z: the largest time the format carries (far inside 2^53). */
export const MAX_CERTIFICATE_TIME = 253_402_300_799;
/** Bytes before the policy text: version, flags, exit key, directory key id, two times, policy length. */
export const CERTIFICATE_HEADER_BYTES = 1 + 1 + X25519_KEY_BYTES + DIRECTORY_KEY_ID_BYTES + 8 + 8 + 2;
export const MIN_CERTIFICATE_BYTES = CERTIFICATE_HEADER_BYTES + 1 + ED25519_SIGNATURE_BYTES;
export const MAX_CERTIFICATE_BYTES = CERTIFICATE_HEADER_BYTES + MAX_POLICY_BYTES + ED25519_SIGNATURE_BYTES;
/** Prefixed to the body before signing, so a directory signature over anything else is never a certificate. */
export const CERTIFICATE_SIGNING_CONTEXT = utf8('underpass exit certificate v1');

const FLAG_TORRENTS = 0x01;
const KNOWN_FLAGS = FLAG_TORRENTS;

/** What a directory key vouches for. Times are whole seconds since the Unix epoch (UTC). */
export interface CertificateFields {
  /** The exit's X25519 static public key: the key Noise NK proves the exit holds. */
  exitKey: Uint8Array;
  /** The exit's policy summary as it announces it (ExitPolicy.summary()). */
  policy: string;
  /** The exit serves torrent streams. */
  torrents: boolean;
  issuedAt: number;
  expiresAt: number;
  /** directoryKeyId(publicKey) of the key that signs. */
  directoryKeyId: Uint8Array;
}

export interface ExitCertificate extends CertificateFields {
  signature: Uint8Array;
  /** The signed bytes (everything before the signature), as received. */
  body: Uint8Array;
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Why fields cannot make a certificate, or undefined when they can. Shared by encoder and decoder. */
export function checkFields(fields: CertificateFields): string | undefined {
  if (fields.exitKey.length !== X25519_KEY_BYTES) return 'the exit key is not 32 bytes';
  if (fields.exitKey.every((byte) => byte === 0)) return 'the exit key is all zeros';
  if (fields.directoryKeyId.length !== DIRECTORY_KEY_ID_BYTES) return 'the directory key id is not 8 bytes';
  for (const [name, time] of [
    ['issued-at', fields.issuedAt],
    ['expires-at', fields.expiresAt],
  ] as const) {
    if (!Number.isSafeInteger(time) || time < 0 || time > MAX_CERTIFICATE_TIME)
      return `${name} is not a time from 1970 to 9999 in whole seconds`;
  }
  if (fields.expiresAt <= fields.issuedAt) return 'it expires before it is issued';
  if (fields.expiresAt - fields.issuedAt > MAX_VALIDITY_SECONDS)
    return `it is valid longer than ${MAX_VALIDITY_SECONDS / 86_400} days`;
  return checkPolicy(fields.policy);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkPolicy(policy: string): string | undefined {
  if (policy.length === 0) return 'the policy summary is empty';
  if (policy.length > MAX_POLICY_CHARS)
    return `the policy summary is longer than ${MAX_POLICY_CHARS} characters`;
  // No control characters: the summary is shown to people, and a line break or escape could forge lines.
  // eslint-disable-next-line no-control-regex -- finding control characters is this line's purpose
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(policy))
    return 'the policy summary has control characters';
  if (LONE_SURROGATE.test(policy)) return 'the policy summary is not well-formed Unicode';
  if (utf8(policy).length > MAX_POLICY_BYTES) return `the policy summary is over ${MAX_POLICY_BYTES} bytes`;
  return undefined;
}

/** The bytes a directory key signs (without the signing context). Throws RangeError on invalid fields. */
export function encodeCertificateBody(fields: CertificateFields): Uint8Array {
  const problem = checkFields(fields);
  if (problem) throw new RangeError(`not a valid certificate: ${problem}`);
  const policy = utf8(fields.policy);
  const header = new Uint8Array(CERTIFICATE_HEADER_BYTES);
  const out = view(header);
  header[0] = CERTIFICATE_VERSION;
  header[1] = fields.torrents ? FLAG_TORRENTS : 0;
  header.set(fields.exitKey, 2);
  header.set(fields.directoryKeyId, 34);
  out.setBigUint64(42, BigInt(fields.issuedAt));
  out.setBigUint64(50, BigInt(fields.expiresAt));
  out.setUint16(58, policy.length);
  return concatBytes(header, policy);
}

/** The certificate's bytes: body ‖ signature. */
export function encodeCertificate(body: Uint8Array, signature: Uint8Array): Uint8Array {
  if (signature.length !== ED25519_SIGNATURE_BYTES) throw new RangeError('an Ed25519 signature is 64 bytes');
  return concatBytes(body, signature);
}

/**
 * Strict decoding: every field checked, nothing left over. Does not check the signature or the dates against
 * a clock (exit-trust.ts does, with the directory keys).
 */
export function decodeCertificate(bytes: Uint8Array): DecodeResult<ExitCertificate> {
  if (bytes.length < MIN_CERTIFICATE_BYTES) return { ok: false, reason: 'shorter than a certificate' };
  if (bytes.length > MAX_CERTIFICATE_BYTES) return { ok: false, reason: 'longer than a certificate' };
  if (bytes[0] !== CERTIFICATE_VERSION) return { ok: false, reason: `unknown version ${bytes[0]}` };
  const flags = bytes[1]!;
  if (flags & ~KNOWN_FLAGS) return { ok: false, reason: 'unknown flags' };
  const fieldsView = view(bytes);
  const issuedAt = fieldsView.getBigUint64(42);
  const expiresAt = fieldsView.getBigUint64(50);
  if (issuedAt > BigInt(MAX_CERTIFICATE_TIME) || expiresAt > BigInt(MAX_CERTIFICATE_TIME))
    return { ok: false, reason: 'a time after the year 9999' };
  const policyLength = fieldsView.getUint16(58);
  if (bytes.length !== CERTIFICATE_HEADER_BYTES + policyLength + ED25519_SIGNATURE_BYTES)
    return { ok: false, reason: 'the policy length does not match the certificate length' };
  const policyEnd = CERTIFICATE_HEADER_BYTES + policyLength;
  const policy = fromUtf8(bytes.subarray(CERTIFICATE_HEADER_BYTES, policyEnd));
  if (policy === undefined) return { ok: false, reason: 'the policy summary is not UTF-8' };
  const fields: CertificateFields = {
    exitKey: bytes.slice(2, 34),
    directoryKeyId: bytes.slice(34, 42),
    issuedAt: Number(issuedAt),
    expiresAt: Number(expiresAt),
    policy,
    torrents: (flags & FLAG_TORRENTS) !== 0,
  };
  const problem = checkFields(fields);
  if (problem) return { ok: false, reason: problem };
  return {
    ok: true,
    value: { ...fields, body: bytes.slice(0, policyEnd), signature: bytes.slice(policyEnd) },
  };
}
