import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toBase64Url } from '@underpass/shared/bytes';
import { loadOrCreateStaticKey } from '../src/keys.js';

describe('the exit key file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'underpass-keys-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is created on first start, readable only by its owner, in a private directory, and reused', async () => {
    const keyFile = join(dir, 'data', 'exit-key.json');
    const first = await loadOrCreateStaticKey(keyFile);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'data'))).mode & 0o777).toBe(0o700);
    const again = await loadOrCreateStaticKey(keyFile);
    expect(toBase64Url(again.publicKey)).toBe(toBase64Url(first.publicKey));
    expect(JSON.parse(await readFile(keyFile, 'utf8'))).toMatchObject({ version: 1 });
  });

  it('refuses a key file others can read', async () => {
    const keyFile = join(dir, 'exit-key.json');
    await loadOrCreateStaticKey(keyFile);
    await chmod(keyFile, 0o644);
    await expect(loadOrCreateStaticKey(keyFile)).rejects.toMatchObject({ code: 'key-file-permissions' });
  });

  it.each(['not json', '{"version":2,"secretKey":"AAAA"}', '{"version":1,"secretKey":"short"}'])(
    'refuses a key file that holds %j',
    async (content) => {
      const keyFile = join(dir, 'exit-key.json');
      await writeFile(keyFile, content, { mode: 0o600 });
      await expect(loadOrCreateStaticKey(keyFile)).rejects.toMatchObject({ code: 'key-file-invalid' });
    },
  );

  it('rotates: moving the file away gives a new key on the next start', async () => {
    const keyFile = join(dir, 'exit-key.json');
    const old = await loadOrCreateStaticKey(keyFile);
    await rm(keyFile);
    const fresh = await loadOrCreateStaticKey(keyFile);
    expect(toBase64Url(fresh.publicKey)).not.toBe(toBase64Url(old.publicKey));
  });
});
