/**
 * DEVELOPMENT ONLY. The embedded directory key of `npm start` and of the tests: its secret half is in this
 * public file, so anyone can sign an exit with it. A network of real users must have its own directory keys
 * (README, "Running a signaling server or an exit node for real"); the extension trusts this key only in builds for a loopback
 * signaling server unless UNDERPASS_DIRECTORY_KEYS names it (wxt.config.ts).
 *
 * It is also the one helper every test and benchmark gives its exits a certificate with
 * (`issueDevelopmentCertificate`), so that no test turns the check off.
 */
import { fromBase64Url } from '../bytes.js';
import { directoryKeyPairFromSecret, issueCertificate, type DirectoryKeyPair } from './directory-key.js';
import type { ExitTrust } from './exit-trust.js';

/** SHA-256("underpass development directory key; never use it for a real network"), as base64url. */
const DEVELOPMENT_DIRECTORY_SECRET = 'ms_AtkpSdOsldBf39jmL_0E0MAOa_bPOM_GqYuE2tF8';
/** The public half, as the extension's configuration spells it. */
export const DEVELOPMENT_DIRECTORY_KEY_TEXT = 'QfLbzHJk-WcX3Z_tCDbKR8eWMKr2YXRzntGSQZ42c5U';

export const DEVELOPMENT_DIRECTORY: DirectoryKeyPair = directoryKeyPairFromSecret(
  fromBase64Url(DEVELOPMENT_DIRECTORY_SECRET)!,
);
export const DEVELOPMENT_DIRECTORY_KEYS: readonly Uint8Array[] = [DEVELOPMENT_DIRECTORY.publicKey];

/** Validity of a development certificate. */
export const DEVELOPMENT_CERTIFICATE_DAYS = 30;

/** What an exit is, for its certificate: the same shape the exit node asks its certificate source with. */
export interface ExitIdentity {
  exitKey: Uint8Array;
  policy: string;
  torrents: boolean;
}

/** A certificate from the development directory key, valid from now for DEVELOPMENT_CERTIFICATE_DAYS. */
export function issueDevelopmentCertificate(exit: ExitIdentity, nowMs: number = Date.now()): Uint8Array {
  const issuedAt = Math.floor(nowMs / 1000);
  return issueCertificate(
    { ...exit, issuedAt, expiresAt: issuedAt + DEVELOPMENT_CERTIFICATE_DAYS * 86_400 },
    DEVELOPMENT_DIRECTORY,
  );
}

/** For an ExitEngine made directly (tests, benchmarks): its development certificate, issued once. */
export function developmentCertificateFor(
  exitKey: Uint8Array,
  options: { policy?: string; torrents?: boolean } = {},
): () => Uint8Array {
  const certificate = issueDevelopmentCertificate({
    exitKey,
    policy: options.policy ?? 'development exit',
    torrents: options.torrents ?? false,
  });
  return () => certificate;
}

/** A client's trust in the development directory only (tests, benchmarks, `npm start`'s extension build). */
export const DEVELOPMENT_TRUST: ExitTrust = { directoryKeys: DEVELOPMENT_DIRECTORY_KEYS };
