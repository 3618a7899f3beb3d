import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fromBase64Url, toBase64Url } from '@underpass/shared/bytes';
import { UnderpassError } from '@underpass/shared/errors';
import { generateStaticKeyPair, publicKeyFromSecret, type StaticKeyPair } from '@underpass/shared/tunnel';

/** On disk: JSON `{"version":1,"secretKey":"<base64url>"}`, mode 0600, in a 0700 directory. */
type KeyFile = { version: 1; secretKey: string };

/**
 * Loads the exit's static key, or creates it on first start. Clients pin the public half, so losing or
 * replacing this file changes the exit's identity (README: "Rotating the exit key").
 */
export async function loadOrCreateStaticKey(keyFile: string): Promise<StaticKeyPair> {
  let text: string | undefined;
  try {
    text = await readFile(keyFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (text === undefined) {
    const pair = generateStaticKeyPair();
    await mkdir(dirname(keyFile), { recursive: true, mode: 0o700 });
    const content: KeyFile = { version: 1, secretKey: toBase64Url(pair.secretKey) };
    await writeFile(keyFile, JSON.stringify(content) + '\n', { mode: 0o600, flag: 'wx' });
    await chmod(keyFile, 0o600);
    return pair;
  }
  const mode = (await stat(keyFile)).mode & 0o777;
  if (mode & 0o077) {
    throw new UnderpassError(
      'key-file-permissions',
      `${keyFile} is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${keyFile}`,
    );
  }
  let parsed: Partial<KeyFile>;
  try {
    parsed = JSON.parse(text) as Partial<KeyFile>;
  } catch {
    throw new UnderpassError('key-file-invalid', `${keyFile} is not valid JSON`);
  }
  const secretKey =
    parsed.version === 1 && typeof parsed.secretKey === 'string'
      ? fromBase64Url(parsed.secretKey)
      : undefined;
  if (!secretKey || secretKey.length !== 32) {
    throw new UnderpassError('key-file-invalid', `${keyFile} does not hold a version 1 exit key`);
  }
  return { secretKey, publicKey: publicKeyFromSecret(secretKey) };
}
