/**
 * Bundles the companion (its sources, `@underpass/shared`, ws and zod) into single files under companion/dist, so
 * that what we ship has no workspace imports and no dependencies to install:
 *   - `underpass-companion.mjs`: the ES module the npm package's bin runs (`npx underpass-companion`);
 *   - `underpass-companion.cjs`: the CommonJS script a Node single executable application embeds (Node 20's SEA
 *     runs one CommonJS script and nothing else).
 * Run directly (`npx tsx scripts/companion-bundle.ts`) it writes both and prints their paths.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type BuildOptions } from 'esbuild';

export const COMPANION_DIR = resolve(import.meta.dirname, '..', 'companion');
export const DIST_DIR = join(COMPANION_DIR, 'dist');
export const ESM_BUNDLE = join(DIST_DIR, 'underpass-companion.mjs');
export const CJS_BUNDLE = join(DIST_DIR, 'underpass-companion.cjs');

/** The oldest Node the package supports (package.json `engines`); newer syntax would break there. */
const TARGET = 'node20.19';

export type BundleFormat = 'esm' | 'cjs';

export class BundleError extends Error {
  readonly code = 'bundle-failed';
  constructor(message: string) {
    super(message);
    this.name = 'BundleError';
  }
}

function optionsFor(format: BundleFormat): BuildOptions {
  return {
    entryPoints: [join(COMPANION_DIR, 'src', 'main.ts')],
    bundle: true,
    platform: 'node',
    format,
    target: TARGET,
    // The checkout's installer bundles itself with esbuild on demand; what we ship never has esbuild, and
    // inlining it would drag in a JS API whose native binary is not there. Left as an import, the attempt
    // fails and the installer goes on without it (see buildCompanionBundle).
    external: ['esbuild'],
    banner:
      format === 'esm'
        ? {
            // ws loads its optional native helpers with require() (in try/catch); an ES module has no require.
            js: "import { createRequire as __underpassRequire } from 'node:module';\nconst require = __underpassRequire(import.meta.url);",
          }
        : undefined,
    // CommonJS has no import.meta: stand in the file's own URL. In a single executable the installer does not
    // use it (the executable is its own entry).
    define: {
      ...(format === 'cjs' ? { 'import.meta.url': '__underpassModuleUrl' } : {}),
      // ws tries to require() two optional native add-ons; a bundle never has them, and inside a single
      // executable the attempt prints a warning on every start. These are ws's documented switches.
      'process.env.WS_NO_BUFFER_UTIL': '"1"',
      'process.env.WS_NO_UTF_8_VALIDATE': '"1"',
    },
    legalComments: 'eof',
    write: false,
    logLevel: 'silent',
  };
}

/** Builds one bundle and returns its text; esbuild's errors come back as one BundleError naming them. */
export async function bundleCompanion(format: BundleFormat): Promise<string> {
  const options = optionsFor(format);
  let text: string;
  try {
    const result = await build(options);
    const output = result.outputFiles?.[0];
    if (!output) throw new BundleError('esbuild produced no output');
    text = output.text;
  } catch (error) {
    if (error instanceof BundleError) throw error;
    throw new BundleError(`bundling the companion (${format}) failed: ${(error as Error).message}`);
  }
  if (format === 'cjs') {
    text = `const __underpassModuleUrl = require('node:url').pathToFileURL(__filename).href;\n${text}`;
  }
  return text;
}

/** Writes both bundles to companion/dist and returns their paths. */
export async function writeCompanionBundles(): Promise<{ esm: string; cjs: string }> {
  await mkdir(DIST_DIR, { recursive: true });
  const [esm, cjs] = await Promise.all([bundleCompanion('esm'), bundleCompanion('cjs')]);
  // The ESM bundle is what bin/underpass-companion.js imports, so it must never be half written.
  await writeFile(`${ESM_BUNDLE}.tmp`, esm);
  await writeFile(`${CJS_BUNDLE}.tmp`, cjs);
  await rename(`${ESM_BUNDLE}.tmp`, ESM_BUNDLE);
  await rename(`${CJS_BUNDLE}.tmp`, CJS_BUNDLE);
  return { esm: ESM_BUNDLE, cjs: CJS_BUNDLE };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  writeCompanionBundles().then(
    ({ esm, cjs }) => console.log(`${esm}\n${cjs}`),
    (error: unknown) => {
      console.error(`companion-bundle: ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
