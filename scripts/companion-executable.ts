/**
 * Builds the companion as a Node single executable application (SEA): a copy of the running `node` binary with the
 * CommonJS bundle (scripts/companion-bundle.ts) injected, for people without Node. It runs on the platform and
 * architecture of the `node` that builds it (a SEA reuses that binary), so each release platform is built on its
 * own kind of machine; companion/README.md says how for macOS and Windows (signing).
 * Run directly (`npx tsx scripts/companion-executable.ts [OUT_DIR]`) it prints the executable's path.
 */
import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { bundleCompanion, DIST_DIR } from './companion-bundle.js';

const run = promisify(execFile);

/** The fuse Node's own binary carries; postject flips it so that node looks for the injected blob. */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const SEA_RESOURCE = 'NODE_SEA_BLOB';

export class ExecutableError extends Error {
  readonly code = 'executable-failed';
  constructor(message: string) {
    super(message);
    this.name = 'ExecutableError';
  }
}

/** `underpass-companion-linux-x64`, `…-darwin-arm64`, `…-win32-x64.exe`: the platform it runs on, in its name. */
export function executableName(
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
): string {
  return `underpass-companion-${platform}-${arch}${platform === 'win32' ? '.exe' : ''}`;
}

export interface BuildExecutableOptions {
  /** Where the executable goes. Default: companion/dist. */
  outDir?: string;
  /** The Node binary to embed the companion in. Default: the one running this. */
  nodePath?: string;
}

export async function buildExecutable(options: BuildExecutableOptions = {}): Promise<string> {
  const outDir = resolve(options.outDir ?? DIST_DIR);
  const nodePath = options.nodePath ?? process.execPath;
  const output = join(outDir, executableName());
  const work = await mkdtemp(join(tmpdir(), 'underpass-sea-'));
  try {
    const script = join(work, 'underpass-companion.cjs');
    const blob = join(work, 'sea-prep.blob');
    const config = join(work, 'sea-config.json');
    await writeFile(script, await bundleCompanion('cjs'));
    // The warning would go to stderr on every start; the browser shows nothing of it, and people running
    // `--help` by hand have no use for it.
    await writeFile(
      config,
      JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true }),
    );
    await step('preparing the SEA blob', () => run(nodePath, ['--experimental-sea-config', config]));

    await mkdir(outDir, { recursive: true });
    const partial = `${output}.partial`;
    await copyFile(nodePath, partial);
    await chmod(partial, 0o755);
    if (process.platform === 'darwin') {
      // The copied binary's signature would no longer match once the blob is in: drop it, sign again after.
      await step('removing the signature', () => run('codesign', ['--remove-signature', partial]));
    }
    // postject's CLI in a child process: its ELF writer prints harmless "Can't find string offset" lines by
    // the dozen, which we keep out of the build's output unless the injection fails.
    await step('injecting the blob (postject)', () =>
      run(nodePath, [
        postjectCli(),
        partial,
        SEA_RESOURCE,
        blob,
        '--sentinel-fuse',
        SEA_FUSE,
        ...(process.platform === 'darwin' ? ['--macho-segment-name', 'NODE_SEA'] : []),
      ]),
    );
    if (process.platform === 'darwin') {
      // Ad-hoc: enough to run on the building Mac; a release is signed and notarised with a Developer ID.
      await step('ad-hoc signing', () => run('codesign', ['--sign', '-', partial]));
    }
    await rename(partial, output);
    return output;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function postjectCli(): string {
  return createRequire(import.meta.url).resolve('postject/dist/cli.js');
}

async function step<T>(what: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    const stderr = (error as { stderr?: unknown }).stderr;
    const detail = typeof stderr === 'string' && stderr.trim() ? stderr.trim() : (error as Error).message;
    throw new ExecutableError(`${what} failed: ${detail.slice(0, 2000)}`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  buildExecutable({ outDir: process.argv[2] }).then(
    (path) => console.log(path),
    (error: unknown) => {
      console.error(`companion-executable: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
