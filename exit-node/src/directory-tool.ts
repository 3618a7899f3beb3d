/**
 * underpass-directory: the operator's tool for a network's directory keys and its exits' certificates.
 * Keeps the secret key in a 0600 file and never prints it. Renewal is `issue` again; the exit re-reads its
 * certificate file on SIGHUP.
 */
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import {
  EXIT_OK,
  HELP_OPTION,
  HELP_WIDTH,
  UsageError,
  helpTable,
  parseFlags,
  runCli,
  wrap,
  type HelpRow,
} from '@underpass/shared/cli';
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

const TOOL = 'underpass-directory';

/** Each command: its synopsis, what it does, its options. */
const COMMANDS = {
  keygen: {
    synopsis: 'keygen --out FILE',
    summary:
      'a new directory key pair; FILE (mode 0600, never overwritten) holds the secret: keep it offline. ' +
      'Prints the public key for clients (UNDERPASS_DIRECTORY_KEYS at build time, or the options page)',
    options: [['--out FILE', 'where the key pair goes (required)']],
  },
  public: {
    synopsis: 'public --directory-key FILE',
    summary: 'print the public key of a directory key file',
    options: [['--directory-key FILE', 'the directory key file (required)']],
  },
  issue: {
    synopsis: 'issue --directory-key FILE --exit-key KEY --policy TEXT [--torrents] [--days N] [--out FILE]',
    summary:
      'sign a certificate for an exit (its --print-identity gives KEY, TEXT and --torrents). Renewal: issue again',
    options: [
      ['--directory-key FILE', 'the directory key file (required)'],
      ['--exit-key KEY', "the exit's key, 43 base64url characters (required)"],
      ['--policy TEXT', "the exit's policy summary, as --print-identity prints it (required)"],
      ['--torrents', 'the exit serves torrents'],
      ['--days N', `valid for N days from now (default 90, at most ${MAX_DAYS})`],
      ['--out FILE', 'write the certificate to FILE (default: standard output)'],
    ],
  },
  show: {
    synopsis: 'show FILE',
    summary: "print a certificate file's fields",
    options: [],
  },
  verify: {
    synopsis: 'verify FILE --trust KEYS',
    summary: 'check a certificate file as a client would',
    options: [['--trust KEYS', 'directory public keys, comma-separated (required)']],
  },
} as const satisfies Record<string, { synopsis: string; summary: string; options: readonly HelpRow[] }>;
type Command = keyof typeof COMMANDS;

const isCommand = (name: string | undefined): name is Command =>
  name !== undefined && Object.hasOwn(COMMANDS, name);

const USAGE = `Usage: ${TOOL} COMMAND [options]   (from the checkout: npm run directory -- COMMAND)

Directory keys and exit certificates. Commands:
${helpTable(
  Object.values(COMMANDS).map((command): HelpRow => [command.synopsis, command.summary]),
  { column: 4 },
)}

Run '${TOOL} COMMAND --help' for a command's options.
`;

function commandUsage(name: Command): string {
  const command = COMMANDS[name];
  const usage = 'Usage: ';
  return `${usage}${wrap(`${TOOL} ${command.synopsis}`, HELP_WIDTH - usage.length).join(`\n${' '.repeat(usage.length)}`)}

${wrap(command.summary, HELP_WIDTH).join('\n')}

Options:
${helpTable([...command.options, ['-h, --help', 'print this and exit']])}
`;
}

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

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError('missing command');
  if (command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(USAGE);
    return EXIT_OK;
  }
  if (!isCommand(command)) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  const name = `${TOOL} ${command}`;
  const { values, positionals } = parseFlags(
    {
      args: rest,
      allowPositionals: command === 'show' || command === 'verify',
      strict: true,
      options: {
        out: { type: 'string' },
        'directory-key': { type: 'string' },
        'exit-key': { type: 'string' },
        policy: { type: 'string' },
        torrents: { type: 'boolean' },
        days: { type: 'string' },
        trust: { type: 'string' },
        help: HELP_OPTION,
      },
    },
    name,
  );
  if (values.help) {
    process.stdout.write(commandUsage(command));
    return EXIT_OK;
  }
  // One option set for all commands keeps parsing simple; a flag another command takes is still refused here.
  const allowed = new Set<string>(COMMANDS[command].options.map(([usage]) => usage.split(' ')[0]!.slice(2)));
  const stray = Object.keys(values).find((flag) => flag !== 'help' && !allowed.has(flag));
  if (stray !== undefined) throw new UsageError(`${command} takes no --${stray}`, name);
  const [file, extra] = positionals;
  if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}`, name);
  const need = (flag: keyof typeof values): string => {
    const value = values[flag];
    if (typeof value !== 'string' || value === '') throw new UsageError(`${command} needs --${flag}`, name);
    return value;
  };
  const needFile = (): string => {
    if (file === undefined) throw new UsageError(`${command} needs a certificate file`, name);
    return file;
  };
  switch (command) {
    case 'keygen':
      await keygen(need('out'));
      return EXIT_OK;
    case 'public': {
      const pair = await readDirectoryKey(need('directory-key'));
      console.log(encodeDirectoryKey(pair.publicKey));
      return EXIT_OK;
    }
    case 'issue': {
      // The command line first (usage errors, exit 2), then the key file (runtime errors, exit 1).
      const exitKey = decodeExitKey(need('exit-key'));
      if (!exitKey) throw new UsageError('--exit-key must be an exit key (43 base64url characters)', name);
      const policy = need('policy');
      const daysText = values.days ?? '90';
      const days = Number(daysText);
      if (!/^[0-9]+$/.test(daysText) || days < 1 || days > MAX_DAYS)
        throw new UsageError(
          `--days must be a whole number from 1 to ${MAX_DAYS}, got ${JSON.stringify(daysText)}`,
          name,
        );
      const directory = await readDirectoryKey(need('directory-key'));
      const issuedAt = Math.floor(Date.now() / 1000);
      let certificate: Uint8Array;
      try {
        certificate = issueCertificate(
          {
            exitKey,
            policy,
            torrents: values.torrents === true,
            issuedAt,
            expiresAt: issuedAt + days * 86_400,
          },
          directory,
        );
      } catch (error) {
        throw new UsageError(errorMessage(error), name);
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
      return EXIT_OK;
    }
    case 'show': {
      const bundle = await readCertificateFile(needFile());
      console.log(describe(bundle.certificate));
      console.log(`signed by directory key ${encodeDirectoryKey(bundle.directoryKey)}`);
      return EXIT_OK;
    }
    case 'verify': {
      const path = needFile();
      const trusted = parseDirectoryKeys(need('trust'));
      if (!trusted.ok) throw new UsageError(`--trust: ${trusted.entry}: ${trusted.reason}`, name);
      const bundle = await readCertificateFile(path);
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
      return EXIT_OK;
    }
  }
}

runCli(TOOL, () => main(process.argv.slice(2)));
