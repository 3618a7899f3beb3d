/**
 * The client's check of an exit: the certificate the exit sent in its Noise reply must be signed by one of
 * the client's directory keys, be valid now, name the very key the session was made with, and promise what
 * the session is for. A session that fails ends with `untrusted-exit` before any stream frame leaves.
 */
import { bytesEqual } from '../bytes.js';
import { SessionError } from '../errors.js';
import { decodeCertificate, type ExitCertificate } from './certificate.js';
import { directoryKeyId, verifyCertificateSignature } from './directory-key.js';

/** How far an exit's `issuedAt` may be ahead of the client's clock (clocks differ) before it is refused. */
export const CLOCK_SKEW_SECONDS = 600;

export const UNTRUSTED_EXIT_REASONS = [
  /** The client has no directory key at all: it trusts no exit (there is no switch to trust every exit). */
  'no-directory-keys',
  /** The exit's reply carried no certificate. */
  'no-certificate',
  /** The bytes are not a certificate (certificate.ts's strict decoder refused them). */
  'malformed-certificate',
  /** Signed by a key id none of the client's directory keys has. */
  'unknown-directory-key',
  /** The signature does not verify under the directory key it names. */
  'bad-signature',
  'expired',
  'not-yet-valid',
  /** The certificate is for another exit key than the one this session is keyed to. */
  'key-mismatch',
  /** The session is for torrents and the certificate does not say the exit serves them. */
  'no-torrents',
] as const;
export type UntrustedExitReason = (typeof UNTRUSTED_EXIT_REASONS)[number];

/** The session-level error; `reason` says which check failed. */
export class UntrustedExitError extends SessionError {
  constructor(
    readonly reason: UntrustedExitReason,
    detail: string,
  ) {
    super('untrusted-exit', `the exit is not certified by a directory key you trust (${reason}: ${detail})`);
    this.name = 'UntrustedExitError';
  }
}

/** What a client trusts; the same for every session of one configuration. */
export interface ExitTrust {
  /** Ed25519 public keys of the network's directory (32 bytes each). Empty: every exit is refused. */
  directoryKeys: readonly Uint8Array[];
  /** Only an exit certified to serve this. */
  needs?: 'torrent';
  /** Wall-clock milliseconds since the epoch (certificates carry calendar times); default Date.now. */
  now?: () => number;
}

export type ExitCheck = { ok: true; certificate: ExitCertificate } | { ok: false; error: UntrustedExitError };

/** Checks `certificate` (the exit's reply payload) for a session keyed to `exitKey`. Never throws. */
export function checkExitCertificate(
  certificate: Uint8Array,
  exitKey: Uint8Array,
  trust: ExitTrust,
): ExitCheck {
  const refuse = (reason: UntrustedExitReason, detail: string): ExitCheck => ({
    ok: false,
    error: new UntrustedExitError(reason, detail),
  });
  if (trust.directoryKeys.length === 0) return refuse('no-directory-keys', 'no directory key is configured');
  if (certificate.length === 0) return refuse('no-certificate', 'the exit sent no certificate');
  const decoded = decodeCertificate(certificate);
  if (!decoded.ok) return refuse('malformed-certificate', decoded.reason);
  const cert = decoded.value;
  const signer = trust.directoryKeys.find((key) => bytesEqual(directoryKeyId(key), cert.directoryKeyId));
  if (!signer) return refuse('unknown-directory-key', 'signed by a directory key this client does not know');
  if (!verifyCertificateSignature(cert.body, cert.signature, signer))
    return refuse('bad-signature', 'the signature does not verify');
  const nowSeconds = Math.floor((trust.now ?? Date.now)() / 1000);
  if (nowSeconds >= cert.expiresAt)
    return refuse('expired', `expired ${new Date(cert.expiresAt * 1000).toISOString()}`);
  if (nowSeconds + CLOCK_SKEW_SECONDS < cert.issuedAt)
    return refuse('not-yet-valid', `valid from ${new Date(cert.issuedAt * 1000).toISOString()}`);
  if (!bytesEqual(cert.exitKey, exitKey))
    return refuse('key-mismatch', 'the certificate is for another exit key');
  if (trust.needs === 'torrent' && !cert.torrents)
    return refuse('no-torrents', 'the certificate does not say this exit serves torrents');
  return { ok: true, certificate: cert };
}
