import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, dirname, isAbsolute, resolve } from 'node:path';
import { isSea } from 'node:sea';
import { fileURLToPath } from 'node:url';
import { UnderpassError } from '@underpass/shared/errors';

/**
 * Registers the companion as a native-messaging host: a manifest named HOST_NAME in the directory each browser
 * searches, whose `path` is a launcher script written beside it. Linux and macOS only; on Windows hosts are
 * registered in the registry, which this command does not touch — there, start `underpass-companion serve`
 * by hand and pair the extension with the code it prints.
 */

export const HOST_NAME = 'org.underpass.companion';
export const LAUNCHER_NAME = `${HOST_NAME}.sh`;
export const BROWSERS = ['chromium', 'chrome', 'firefox'] as const;
export type BrowserName = (typeof BROWSERS)[number];

const CHROME_EXTENSION_ID = /^[a-p]{32}$/;
const FIREFOX_EXTENSION_ID =
  /^(\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}|[A-Za-z0-9._+-]{0,64}@[A-Za-z0-9._-]{1,64})$/;

export function isChromeExtensionId(id: string): boolean {
  return CHROME_EXTENSION_ID.test(id);
}

export function isFirefoxExtensionId(id: string): boolean {
  return FIREFOX_EXTENSION_ID.test(id);
}

export class InstallError extends UnderpassError {
  constructor(message: string) {
    super('install-failed', message);
    this.name = 'InstallError';
  }
}

export interface HostLocationOptions {
  /** A Chromium/Chrome `--user-data-dir`: the manifest goes to `DIR/NativeMessagingHosts/`. */
  userDataDir?: string;
  /** Defaults to the user's home directory (which honours $HOME). */
  homeDir?: string;
  /** Defaults to process.platform. */
  platform?: NodeJS.Platform;
}

export interface InstallOptions extends HostLocationOptions {
  browsers: readonly BrowserName[];
  /** Skip (rather than refuse) a browser for which no id was given: what `--browser all` means. */
  skipBrowsersWithoutIds?: boolean;
  /** Chrome ids (32 letters a–p) go to Chromium/Chrome, Firefox ids (`name@domain` or `{uuid}`) to Firefox. */
  extensionIds: readonly string[];
  /** The Node binary the launcher runs. Default: this process's. */
  nodePath?: string;
  /**
   * The companion's bin script. Default: companion/bin/underpass-companion.js next to this source; none when this
   * is the single executable, which is its own entry (then nodePath is the executable).
   */
  entryPath?: string;
}

export interface InstalledHost {
  browser: BrowserName;
  manifestPath: string;
  launcherPath: string;
}

/** Where `browser` looks for native-messaging host manifests. */
export function manifestDirectory(browser: BrowserName, options: HostLocationOptions = {}): string {
  if (options.userDataDir !== undefined) {
    if (browser === 'firefox') {
      throw new InstallError(
        'Firefox has no per-profile native-messaging hosts; to target a test home, set HOME instead',
      );
    }
    return join(resolve(options.userDataDir), 'NativeMessagingHosts');
  }
  const home = options.homeDir ?? homedir();
  const platform = options.platform ?? process.platform;
  if (platform === 'linux') {
    switch (browser) {
      case 'chromium':
        return join(home, '.config', 'chromium', 'NativeMessagingHosts');
      case 'chrome':
        return join(home, '.config', 'google-chrome', 'NativeMessagingHosts');
      case 'firefox':
        return join(home, '.mozilla', 'native-messaging-hosts');
    }
  }
  if (platform === 'darwin') {
    const support = join(home, 'Library', 'Application Support');
    switch (browser) {
      case 'chromium':
        return join(support, 'Chromium', 'NativeMessagingHosts');
      case 'chrome':
        return join(support, 'Google', 'Chrome', 'NativeMessagingHosts');
      case 'firefox':
        return join(support, 'Mozilla', 'NativeMessagingHosts');
    }
  }
  throw new InstallError(
    `native-messaging hosts cannot be installed on ${platform} by this command; ` +
      'run `underpass-companion serve` and paste its pairing code into the extension options instead',
  );
}

export function defaultEntryPath(): string {
  return fileURLToPath(new URL('../bin/underpass-companion.js', import.meta.url));
}

/** The manifest a browser reads. Chromium lists origins, Firefox extension ids. */
export function hostManifest(
  browser: BrowserName,
  launcherPath: string,
  extensionIds: readonly string[],
): Record<string, unknown> {
  const common = {
    name: HOST_NAME,
    description: 'Underpass companion: the local SOCKS5 endpoint of the Underpass extension',
    path: launcherPath,
    type: 'stdio',
  };
  if (browser === 'firefox') return { ...common, allowed_extensions: [...extensionIds] };
  return { ...common, allowed_origins: extensionIds.map((id) => `chrome-extension://${id}/`) };
}

export function launcherScript(nodePath: string, entryPath: string | undefined): string {
  const command = entryPath === undefined ? [nodePath] : [nodePath, entryPath];
  return [
    '#!/bin/sh',
    '# Written by `underpass-companion install`. The browser runs this as the native-messaging host and passes',
    '# the calling extension (origin or manifest path and id) as arguments.',
    `exec ${command.map(shellQuote).join(' ')} native "$@"`,
    '',
  ].join('\n');
}

export async function installNativeHost(options: InstallOptions): Promise<InstalledHost[]> {
  const chromeIds: string[] = [];
  const firefoxIds: string[] = [];
  for (const id of options.extensionIds) {
    if (isChromeExtensionId(id)) chromeIds.push(id);
    else if (isFirefoxExtensionId(id)) firefoxIds.push(id);
    else throw new InstallError(`not an extension id: ${JSON.stringify(id)}`);
  }
  const nodePath = options.nodePath ?? process.execPath;
  const executable = isSea();
  const entryPath = options.entryPath ?? (executable ? undefined : defaultEntryPath());
  if (!isAbsolute(nodePath) || (entryPath !== undefined && !isAbsolute(entryPath))) {
    throw new InstallError('the launcher needs absolute paths to node and to the companion');
  }

  const targets = planTargets(options, chromeIds, firefoxIds);
  const installed: InstalledHost[] = [];
  for (const { browser, directory } of targets) {
    const ids = browser === 'firefox' ? firefoxIds : chromeIds;
    const launcherPath = join(directory, LAUNCHER_NAME);
    const manifestPath = join(directory, `${HOST_NAME}.json`);
    await mkdir(directory, { recursive: true });
    await writeAtomically(launcherPath, launcherScript(nodePath, entryPath), 0o755);
    await writeAtomically(
      manifestPath,
      `${JSON.stringify(hostManifest(browser, launcherPath, ids), null, 2)}\n`,
      0o644,
    );
    installed.push({ browser, manifestPath, launcherPath });
  }
  if (options.entryPath === undefined && !executable) await buildCompanionBundle();
  return installed;
}

/** Where the default entry (bin/underpass-companion.js) looks for the bundle; node_modules/.cache is ignored by git. */
export function companionBundlePath(): string {
  return fileURLToPath(
    new URL('../../node_modules/.cache/underpass-companion/companion.mjs', import.meta.url),
  );
}

/**
 * Bundles the companion's sources and its dependencies (ws, zod) into one ES module, so that it starts without
 * tsx and without resolving packages: the browser waits for that start on every Protect (with zod and ws left as
 * imports the bundle took 370 ms to load on a slow day here, inlined 240 ms). Best effort: without esbuild, or if
 * it fails, the launcher runs the sources through tsx as before.
 */
export async function buildCompanionBundle(): Promise<boolean> {
  try {
    const esbuild = await import('esbuild');
    const result = await esbuild.build({
      entryPoints: [fileURLToPath(new URL('./main.ts', import.meta.url))],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: `node${process.versions.node.split('.')[0] ?? '20'}`,
      // ws loads its optional native helpers with require(); an ES module has none unless it makes one.
      banner: {
        js: "import { createRequire as __underpassRequire } from 'node:module';\nconst require = __underpassRequire(import.meta.url);",
      },
      write: false,
      logLevel: 'silent',
    });
    const output = result.outputFiles[0];
    if (!output) return false;
    const path = companionBundlePath();
    await mkdir(dirname(path), { recursive: true });
    // Atomic: installs for several profiles may run at once while a browser starts the companion.
    await writeAtomically(path, output.text, 0o644);
    return true;
  } catch {
    return false;
  }
}

/** Removes our manifest and launcher from each browser's directory; returns the paths that were removed. */
export async function uninstallNativeHost(
  options: HostLocationOptions & { browsers: readonly BrowserName[] },
): Promise<string[]> {
  const removed: string[] = [];
  for (const directory of new Set(browsersFor(options).map((b) => manifestDirectory(b, options)))) {
    for (const name of [`${HOST_NAME}.json`, LAUNCHER_NAME]) {
      const path = join(directory, name);
      try {
        await rm(path);
        removed.push(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  }
  return removed;
}

/** A user-data dir is a Chromium notion, so with one, `all` means Chromium-family only. */
function browsersFor(options: { browsers: readonly BrowserName[]; userDataDir?: string }): BrowserName[] {
  if (options.userDataDir === undefined) return [...options.browsers];
  const chromium = options.browsers.filter((b) => b !== 'firefox');
  if (chromium.length === 0) return [...options.browsers]; // firefox alone: manifestDirectory explains
  return chromium;
}

function planTargets(
  options: InstallOptions,
  chromeIds: string[],
  firefoxIds: string[],
): { browser: BrowserName; directory: string }[] {
  const browsers = browsersFor(options);
  const targets: { browser: BrowserName; directory: string }[] = [];
  const seen = new Set<string>();
  for (const browser of browsers) {
    const ids = browser === 'firefox' ? firefoxIds : chromeIds;
    if (ids.length === 0) {
      if (!options.skipBrowsersWithoutIds) {
        throw new InstallError(
          browser === 'firefox'
            ? 'give the Firefox extension id with --extension-id (name@domain or {uuid})'
            : 'give the Chrome extension id with --extension-id (32 letters a-p)',
        );
      }
      continue;
    }
    const directory = manifestDirectory(browser, options);
    if (seen.has(directory)) continue;
    seen.add(directory);
    targets.push({ browser, directory });
  }
  if (targets.length === 0) throw new InstallError('no --extension-id matches the chosen browsers');
  return targets;
}

async function writeAtomically(path: string, content: string, mode: number): Promise<void> {
  const temporary = join(dirname(path), `.${HOST_NAME}.${process.pid}.tmp`);
  await writeFile(temporary, content, { mode });
  await chmod(temporary, mode);
  await rename(temporary, path);
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
