#!/usr/bin/env node
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// Installed from npm (`npx underpass-companion`), the package is this script and one bundle with everything
// inlined (scripts/companion-bundle.ts); there are no sources. In a checkout, the sources run as below.
const packaged = !existsSync(fileURLToPath(new URL('../src/main.ts', import.meta.url)));

// `install` bundles the companion (see buildCompanionBundle): node starts it in ~70 ms where tsx needs ~350 ms,
// and the browser waits for that on every Protect. Only for `native` (the other commands find files next to their
// source), and only while no source is newer than it: an edited checkout runs through tsx until the next install.
const bundle = new URL('../../node_modules/.cache/underpass-companion/companion.mjs', import.meta.url);
const sources = [new URL('../src/', import.meta.url), new URL('../../shared/src/', import.meta.url)];

function newestIn(directory) {
  let newest = 0;
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = `${directory}/${entry.name}`;
    newest = Math.max(newest, entry.isDirectory() ? newestIn(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function bundleIsFresh() {
  try {
    const built = statSync(fileURLToPath(bundle)).mtimeMs;
    return sources.every((url) => newestIn(fileURLToPath(url)) <= built);
  } catch {
    return false;
  }
}

if (packaged) {
  await import('../dist/underpass-companion.mjs');
} else if (process.argv[2] === 'native' && bundleIsFresh()) {
  await import(bundle.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/main.ts');
}
