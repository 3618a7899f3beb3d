import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildCompanionBundle, companionBundlePath } from '../src/install.js';

describe('the prebuilt companion bundle', () => {
  it('builds, and the bundle runs the native host on its own (no tsx): a bad caller exits with status 2', async () => {
    expect(await buildCompanionBundle()).toBe(true);
    const bundle = companionBundlePath();
    expect(existsSync(bundle)).toBe(true);
    const run = spawnSync(process.execPath, [bundle, 'native', 'https://not-an-extension.example/'], {
      input: '',
      timeout: 10_000,
    });
    expect(run.status).toBe(2);
    // Native messaging owns stdout: exactly one framed message, the error that says why, and nothing else.
    const out = run.stdout;
    expect(out.length).toBeGreaterThan(4);
    expect(out.readUInt32LE(0)).toBe(out.length - 4);
    expect(JSON.parse(out.subarray(4).toString('utf8'))).toMatchObject({ type: 'error', code: 'bad-caller' });
  });
});
