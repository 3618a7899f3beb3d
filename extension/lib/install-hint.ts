/**
 * The command that installs the companion for the browser the user is actually running. The companion's
 * installer knows `chromium`, `chrome` and `firefox` (their own native-messaging folders); for other Chromium
 * browsers whose folder we know, it writes into their profile folder with `--user-data-dir` (a Chromium browser
 * reads hosts from DIR/NativeMessagingHosts). Anything we cannot tell apart gets the `chrome` command, as before.
 */

/** The companion's `--browser` values (companion/src/install.ts). */
export type InstallerBrowser = 'chromium' | 'chrome' | 'firefox';

export interface BrowserClues {
  /** This is the Firefox build (`import.meta.env.FIREFOX`): the only Firefox clue we need. */
  firefoxBuild: boolean;
  /** `navigator.userAgentData.brands` (Chromium only, pages and workers alike). */
  brands?: readonly { brand: string }[];
  /** `navigator.userAgentData.platform`: "Linux", "macOS", "Windows", … */
  platform?: string;
}

export interface DetectedBrowser {
  /** What the user would call it, for the popup's words. */
  name: string;
  browser: InstallerBrowser;
  /** For browsers the installer has no name for: their profile folder, as a shell word. */
  userDataDir?: string;
}

/** Chromium browsers with their own native-messaging folder: where it is on Linux and on macOS. */
const OTHER_CHROMIUM: readonly { brand: string; name: string; linux: string; mac: string }[] = [
  {
    brand: 'Microsoft Edge',
    name: 'Microsoft Edge',
    linux: '"$HOME/.config/microsoft-edge"',
    mac: '"$HOME/Library/Application Support/Microsoft Edge"',
  },
  {
    brand: 'Brave',
    name: 'Brave',
    linux: '"$HOME/.config/BraveSoftware/Brave-Browser"',
    mac: '"$HOME/Library/Application Support/BraveSoftware/Brave-Browser"',
  },
];

/** At most this many brands are looked at: the list comes from the browser, but costs nothing to bound. */
const MAX_BRANDS = 16;

export function detectBrowser(clues: BrowserClues): DetectedBrowser {
  if (clues.firefoxBuild) return { name: 'Firefox', browser: 'firefox' };
  const brands = new Set((clues.brands ?? []).slice(0, MAX_BRANDS).map((entry) => entry.brand));
  for (const other of OTHER_CHROMIUM) {
    if (!brands.has(other.brand)) continue;
    const userDataDir =
      clues.platform === 'Linux' ? other.linux : clues.platform === 'macOS' ? other.mac : undefined;
    // Elsewhere (Windows) the installer cannot help anyway; the hint then falls back to pairing.
    return userDataDir === undefined
      ? { name: other.name, browser: 'chrome' }
      : { name: other.name, browser: 'chromium', userDataDir };
  }
  if (brands.has('Google Chrome')) return { name: 'Google Chrome', browser: 'chrome' };
  if (brands.has('Chromium')) return { name: 'Chromium', browser: 'chromium' };
  // No brands (an old or privacy-hardened Chromium): Chrome is the likeliest.
  return { name: 'Chrome', browser: 'chrome' };
}

/** `npx underpass-companion install …` for this browser and extension. */
export function installCommand(detected: DetectedBrowser, extensionId: string): string {
  return `npx underpass-companion ${installArguments(detected, extensionId)}`;
}

function installArguments(detected: DetectedBrowser, extensionId: string): string {
  const profile = detected.userDataDir === undefined ? '' : ` --user-data-dir ${detected.userDataDir}`;
  return `install --browser ${detected.browser}${profile} --extension-id ${extensionId}`;
}

interface UserAgentDataLike {
  brands?: unknown;
  platform?: unknown;
}

/** Reads the clues from this context's navigator (popup, options page or service worker). */
export function browserClues(firefoxBuild: boolean): BrowserClues {
  if (firefoxBuild) return { firefoxBuild };
  // userAgentData is Chromium-only and missing from TypeScript's DOM types; read it defensively.
  const data =
    typeof navigator === 'undefined'
      ? undefined
      : (navigator as unknown as { userAgentData?: UserAgentDataLike }).userAgentData;
  const brands = Array.isArray(data?.brands)
    ? data.brands.flatMap((entry: unknown) =>
        typeof entry === 'object' &&
        entry !== null &&
        typeof (entry as { brand?: unknown }).brand === 'string'
          ? [{ brand: (entry as { brand: string }).brand }]
          : [],
      )
    : undefined;
  return {
    firefoxBuild,
    brands,
    platform: typeof data?.platform === 'string' ? data.platform : undefined,
  };
}
