/**
 * underpass-directory: the operator's tool for a network's directory keys and its exits' certificates.
 * Keeps the secret key in a 0600 file and never prints it. Renewal is `issue` again; the exit re-reads its
 * certificate file on SIGHUP.
 */
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { fromBase64Url, toBase64Url } from '@underpass/shared/bytes';
import { errorMessage, UnderpassError } from '@underpass/shared/errors';
import { decodeExitKey } from '@underpass/shared/signaling';
import {
  checkExitCertificate,
  decodeCertificate,
  directoryKeyId,
  directoryKeyPairFromSecret,
  encodeDirectoryKey,
  generateDirectoryKeyPair,
  issueCertificate,
  MAX_VALIDITY_SECONDS,
  parseDirectoryKeys,
  type DirectoryKeyPair,
} from '@underpass/shared/trust';
import { readCertificateFile, writeCertificateFile } from './certificates.js';

const MAX_DAYS = MAX_VALIDITY_SECONDS / 86_400;

const USAGE = `underpass-directory — directory keys and exit certificates (npm run directory -- COMMAND)

  keygen --out FILE                       a new directory key pair; FILE (mode 0600, never overwritten) holds
                                          the secret: keep it offline. Prints the public key for clients
                                          (UNDERPASS_DIRECTORY_KEYS at build time, or the options page)
  public --directory-key FILE             print the public key of a directory key file
  issue --directory-key FILE --exit-key KEY --policy TEXT [--torrents] [--days N] [--out FILE]
                                          sign a certificate for an exit (its --print-identity gives KEY,
                                          TEXT and --torrents); N days from now (default 90, at most ${MAX_DAYS});
                                          written to FILE (default: standard output). Renewal: issue again
  show FILE                               print a certificate file's fields
  verify FILE --trust KEYS                check it as a client would (KEYS: directory public keys, comma-separated)
  --help`;

type DirectoryKeyFile = { version: 1; secretKey: string; publicKey: string };

async function keygen(out: string): Promise<void> {
  const pair = generateDirectoryKeyPair();
  const content: DirectoryKeyFile = {
    version: 1,
    secretKey: toBase64Url(pair.secretKey),
    publicKey: encodeDirectoryKey(pair.publicKey),
  };
  try {
    await writeFile(out, JSON.stringify(content) + '\n', { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new UnderpassError('file-exists', `${out} exists; a directory key is never overwritten`);
    throw error;
  }
  await chmod(out, 0o600);
  console.log(encodeDirectoryKey(pair.publicKey));
}

async function readDirectoryKey(path: string): Promise<DirectoryKeyPair> {
  const mode = (await stat(path)).mode & 0o777;
  if (mode & 0o077)
    throw new UnderpassError(
      'key-file-permissions',
      `${path} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${path}`,
    );
  let parsed: Partial<DirectoryKeyFile>;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<DirectoryKeyFile>;
  } catch {
    throw new UnderpassError('key-file-invalid', `${path} is not valid JSON`);
  }
  const secret =
    parsed.version === 1 && typeof parsed.secretKey === 'string'
      ? fromBase64Url(parsed.secretKey)
      : undefined;
  if (!secret || secret.length !== 32)
    throw new UnderpassError('key-file-invalid', `${path} does not hold a version 1 directory key`);
  const pair = directoryKeyPairFromSecret(secret);
  if (parsed.publicKey !== encodeDirectoryKey(pair.publicKey))
    throw new UnderpassError('key-file-invalid', `${path}: the public key does not match the secret key`);
  return pair;
}

function describe(certificate: Uint8Array): string {
  const decoded = decodeCertificate(certificate);
  if (!decoded.ok) throw new UnderpassError('certificate-invalid', `not a certificate: ${decoded.reason}`);
  const cert = decoded.value;
  return JSON.stringify(
    {
      exitKey: toBase64Url(cert.exitKey),
      policy: cert.policy,
      torrents: cert.torrents,
      issuedAt: new Date(cert.issuedAt * 1000).toISOString(),
      expiresAt: new Date(cert.expiresAt * 1000).toISOString(),
      directoryKeyId: Buffer.from(cert.directoryKeyId).toString('hex'),
    },
    null,
    2,
  );
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      'directory-key': { type: 'string' },
      'exit-key': { type: 'string' },
      policy: { type: 'string' },
      torrents: { type: 'boolean' },
      days: { type: 'string' },
      trust: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  const [command, file] = positionals;
  const need = (name: keyof typeof values): string => {
    const value = values[name];
    if (typeof value !== 'string' || value === '')
      throw new UnderpassError('usage', `${command} needs --${name}`);
    return value;
  };
  switch (command) {
    case 'keygen':
      return keygen(need('out'));
    case 'public': {
      const pair = await readDirectoryKey(need('directory-key'));
      console.log(encodeDirectoryKey(pair.publicKey));
      return;
    }
    case 'issue': {
      const directory = await readDirectoryKey(need('directory-key'));
      const exitKey = decodeExitKey(need('exit-key'));
      if (!exitKey)
        throw new UnderpassError('usage', '--exit-key must be an exit key (43 base64url characters)');
      const daysText = values.days ?? '90';
      const days = Number(daysText);
      if (!/^[0-9]+$/.test(daysText) || days < 1 || days > MAX_DAYS)
        throw new UnderpassError('usage', `--days must be a whole number from 1 to ${MAX_DAYS}`);
      const issuedAt = Math.floor(Date.now() / 1000);
      let certificate: Uint8Array;
      try {
        certificate = issueCertificate(
          {
            exitKey,
            policy: need('policy'),
            torrents: values.torrents === true,
            issuedAt,
            expiresAt: issuedAt + days * 86_400,
          },
          directory,
        );
      } catch (error) {
        throw new UnderpassError('usage', errorMessage(error));
      }
      const bundle = { certificate, directoryKey: directory.publicKey };
      if (values.out) {
        await writeCertificateFile(values.out, bundle);
        console.error(`wrote ${values.out}:\n${describe(certificate)}`);
      } else {
        console.log(
          JSON.stringify({
            version: 1,
            certificate: toBase64Url(certificate),
            directoryKey: encodeDirectoryKey(directory.publicKey),
          }),
        );
      }
      return;
    }
    case 'show': {
      if (!file) throw new UnderpassError('usage', 'show needs a certificate file');
      const bundle = await readCertificateFile(file);
      console.log(describe(bundle.certificate));
      console.log(`signed by directory key ${encodeDirectoryKey(bundle.directoryKey)}`);
      return;
    }
    case 'verify': {
      if (!file) throw new UnderpassError('usage', 'verify needs a certificate file');
      const trusted = parseDirectoryKeys(need('trust'));
      if (!trusted.ok) throw new UnderpassError('usage', `--trust: ${trusted.entry}: ${trusted.reason}`);
      const bundle = await readCertificateFile(file);
      const decoded = decodeCertificate(bundle.certificate);
      // The exit key is the certificate's own here: verify answers "would a client trust this exit?".
      const check = checkExitCertificate(
        bundle.certificate,
        decoded.ok ? decoded.value.exitKey : new Uint8Array(32),
        { directoryKeys: trusted.keys },
      );
      if (!check.ok) throw check.error;
      const signer = trusted.keys.find(
        (key) => Buffer.compare(directoryKeyId(key), check.certificate.directoryKeyId) === 0,
      );
      console.log(`valid: signed by ${signer ? encodeDirectoryKey(signer) : '?'}`);
      console.log(describe(bundle.certificate));
      return;
    }
    default:
      console.log(USAGE);
      if (!values.help && command !== 'help') process.exitCode = 2;
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`underpass-directory: ${errorMessage(error)}`);
  process.exit(1);
});
