import { open, writeFile } from 'node:fs/promises';
import { bytesEqual, fromBase64Url, toBase64Url } from '@underpass/shared/bytes';
import { UnderpassError } from '@underpass/shared/errors';
import {
  checkExitCertificate,
  decodeCertificate,
  decodeDirectoryKey,
  DEVELOPMENT_DIRECTORY,
  issueDevelopmentCertificate,
  directoryKeyId,
  encodeDirectoryKey,
  type ExitCertificate,
  type ExitIdentity,
} from '@underpass/shared/trust';

/**
 * On disk: JSON `{"version":1,"certificate":"<base64url>","directoryKey":"<base64url>"}`. The directory's
 * public key rides along so the exit can check its own certificate's signature at start (a damaged or
 * hand-edited file is refused there, not by every client); clients trust only their own directory keys.
 */
type CertificateFile = { version: 1; certificate: string; directoryKey: string };

/** A certificate file is a few hundred bytes; anything much larger is not one. */
const MAX_CERTIFICATE_FILE_BYTES = 8 * 1024;

export interface CertificateBundle {
  certificate: Uint8Array;
  /** The public key of the directory key that signed it. */
  directoryKey: Uint8Array;
}

export async function writeCertificateFile(path: string, bundle: CertificateBundle): Promise<void> {
  const content: CertificateFile = {
    version: 1,
    certificate: toBase64Url(bundle.certificate),
    directoryKey: encodeDirectoryKey(bundle.directoryKey),
  };
  // Not secret (every client receives it), but only its operator should replace it.
  await writeFile(path, JSON.stringify(content) + '\n', { mode: 0o644 });
}

export async function readCertificateFile(path: string): Promise<CertificateBundle> {
  let text: string;
  try {
    const file = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(MAX_CERTIFICATE_FILE_BYTES + 1);
      const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
      if (bytesRead > MAX_CERTIFICATE_FILE_BYTES)
        throw new UnderpassError('certificate-invalid', `${path} is too large to be a certificate file`);
      text = buffer.subarray(0, bytesRead).toString('utf8');
    } finally {
      await file.close();
    }
  } catch (error) {
    if (error instanceof UnderpassError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new UnderpassError(
      'certificate-missing',
      code === 'ENOENT'
        ? `no certificate file at ${path}; ask the network's directory for one (exit-node/README.md, "Certificates")`
        : `cannot read the certificate file ${path}: ${code ?? String(error)}`,
    );
  }
  let parsed: Partial<CertificateFile>;
  try {
    parsed = JSON.parse(text) as Partial<CertificateFile>;
  } catch {
    throw new UnderpassError('certificate-invalid', `${path} is not valid JSON`);
  }
  const certificate =
    parsed.version === 1 && typeof parsed.certificate === 'string'
      ? fromBase64Url(parsed.certificate)
      : undefined;
  const directoryKey =
    typeof parsed.directoryKey === 'string' ? decodeDirectoryKey(parsed.directoryKey) : undefined;
  if (!certificate || !directoryKey?.ok)
    throw new UnderpassError('certificate-invalid', `${path} does not hold a version 1 exit certificate`);
  return { certificate, directoryKey: directoryKey.key };
}

/**
 * The checks an exit makes of its own certificate before it serves anyone: well-formed, signed by the
 * directory key it names, valid now, for this exit's key, policy and torrent service. Throws an
 * UnderpassError (`certificate-invalid`, `certificate-expired`, `certificate-mismatch`) that says what to do.
 */
export function checkOwnCertificate(
  bundle: CertificateBundle,
  exit: ExitIdentity,
  nowMs: number = Date.now(),
): ExitCertificate {
  const decoded = decodeCertificate(bundle.certificate);
  if (!decoded.ok) throw new UnderpassError('certificate-invalid', `not a certificate: ${decoded.reason}`);
  const cert = decoded.value;
  if (!bytesEqual(directoryKeyId(bundle.directoryKey), cert.directoryKeyId))
    throw new UnderpassError(
      'certificate-invalid',
      'the certificate was not signed by the directory key beside it',
    );
  const check = checkExitCertificate(bundle.certificate, exit.exitKey, {
    directoryKeys: [bundle.directoryKey],
    now: () => nowMs,
  });
  if (!check.ok) {
    const { reason } = check.error;
    if (reason === 'key-mismatch')
      throw new UnderpassError(
        'certificate-mismatch',
        `the certificate is for exit key ${toBase64Url(cert.exitKey)}, this exit's key is ${toBase64Url(exit.exitKey)}`,
      );
    if (reason === 'expired' || reason === 'not-yet-valid')
      throw new UnderpassError(
        'certificate-expired',
        `the certificate is valid from ${isoDate(cert.issuedAt)} to ${isoDate(cert.expiresAt)}, not now; ask the directory for a new one`,
      );
    throw new UnderpassError('certificate-invalid', check.error.message);
  }
  if (cert.policy !== exit.policy)
    throw new UnderpassError(
      'certificate-mismatch',
      `the certificate's policy is "${cert.policy}" but this exit runs "${exit.policy}"; ask for a certificate for this policy (--print-identity)`,
    );
  if (cert.torrents !== exit.torrents)
    throw new UnderpassError(
      'certificate-mismatch',
      cert.torrents
        ? 'the certificate says this exit serves torrents, but it runs without --torrents'
        : 'this exit runs with --torrents, but its certificate does not say it serves them',
    );
  return cert;
}

function isoDate(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

/** Where an exit gets its certificate: asked at start and on every reload, with what the exit is now. */
export type CertificateSource = (exit: ExitIdentity) => CertificateBundle | Promise<CertificateBundle>;

/** The operator's file (`--certificate FILE`), read again on every reload. */
export function certificateFromFile(path: string): CertificateSource {
  return () => readCertificateFile(path);
}

/**
 * DEVELOPMENT ONLY: a fresh certificate from the embedded development directory key for whatever this exit
 * is (`npm start`, tests, benchmarks). Clients trust it only when built to (shared/src/trust/development.ts).
 */
export const developmentCertificates: CertificateSource = (exit) => ({
  certificate: issueDevelopmentCertificate(exit),
  directoryKey: DEVELOPMENT_DIRECTORY.publicKey,
});
