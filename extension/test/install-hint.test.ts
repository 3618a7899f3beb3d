import { describe, expect, it } from 'vitest';
import { describeNativeError } from '../lib/companion-port';
import { browserClues, detectBrowser, installCommand, type BrowserClues } from '../lib/install-hint';

const ID = 'abcdefghijklmnopabcdefghijklmnop';
const NOT_A_BRAND = { brand: 'Not_A Brand' };

function chromium(...names: string[]): BrowserClues {
  return {
    firefoxBuild: false,
    brands: [NOT_A_BRAND, ...names.map((brand) => ({ brand }))],
    platform: 'Linux',
  };
}

describe('which browser the install hint names', () => {
  it('Chromium says chromium, Google Chrome says chrome (both list Chromium among their brands)', () => {
    expect(installCommand(detectBrowser(chromium('Chromium')), ID)).toBe(
      `npx underpass-companion install --browser chromium --extension-id ${ID}`,
    );
    expect(installCommand(detectBrowser(chromium('Chromium', 'Google Chrome')), ID)).toBe(
      `npx underpass-companion install --browser chrome --extension-id ${ID}`,
    );
  });

  it('the Firefox build says firefox, whatever else is around', () => {
    const detected = detectBrowser({ firefoxBuild: true, brands: [{ brand: 'Google Chrome' }] });
    expect(detected).toEqual({ name: 'Firefox', browser: 'firefox' });
    expect(installCommand(detected, 'underpass@example.org')).toBe(
      'npx underpass-companion install --browser firefox --extension-id underpass@example.org',
    );
  });

  it('Edge and Brave get their own profile folder, per platform, quoted for the shell', () => {
    expect(installCommand(detectBrowser(chromium('Chromium', 'Microsoft Edge')), ID)).toBe(
      `npx underpass-companion install --browser chromium --user-data-dir "$HOME/.config/microsoft-edge" --extension-id ${ID}`,
    );
    const braveOnMac = detectBrowser({ ...chromium('Chromium', 'Brave'), platform: 'macOS' });
    expect(braveOnMac).toEqual({
      name: 'Brave',
      browser: 'chromium',
      userDataDir: '"$HOME/Library/Application Support/BraveSoftware/Brave-Browser"',
    });
    // Windows: no folder to write into (the installer does not do the registry); the plain command, named Edge.
    expect(detectBrowser({ ...chromium('Microsoft Edge'), platform: 'Windows' })).toEqual({
      name: 'Microsoft Edge',
      browser: 'chrome',
    });
  });

  it('no brands at all (old or hardened Chromium) falls back to chrome', () => {
    expect(detectBrowser({ firefoxBuild: false })).toEqual({ name: 'Chrome', browser: 'chrome' });
    expect(detectBrowser({ firefoxBuild: false, brands: [] }).browser).toBe('chrome');
  });

  it('looks at no more than 16 brands', () => {
    const many = Array.from({ length: 40 }, (_, i) => ({ brand: `Brand ${i}` }));
    expect(detectBrowser({ firefoxBuild: false, brands: [...many, { brand: 'Chromium' }] }).browser).toBe(
      'chrome',
    );
  });
});

describe('reading the clues', () => {
  it('takes only well-formed brands from userAgentData', () => {
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    Object.defineProperty(globalThis, 'navigator', {
      configurable: true,
      value: {
        userAgentData: {
          brands: [{ brand: 'Chromium' }, { brand: 7 }, null, 'Google Chrome'],
          platform: 'Linux',
        },
      },
    });
    try {
      expect(browserClues(false)).toEqual({
        firefoxBuild: false,
        brands: [{ brand: 'Chromium' }],
        platform: 'Linux',
      });
      expect(browserClues(true)).toEqual({ firefoxBuild: true });
    } finally {
      if (saved) Object.defineProperty(globalThis, 'navigator', saved);
      else Reflect.deleteProperty(globalThis, 'navigator');
    }
  });

  it('without userAgentData (or without navigator), there are no clues beyond the build', () => {
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    Object.defineProperty(globalThis, 'navigator', { configurable: true, value: {} });
    try {
      expect(browserClues(false)).toEqual({ firefoxBuild: false, brands: undefined, platform: undefined });
    } finally {
      if (saved) Object.defineProperty(globalThis, 'navigator', saved);
      else Reflect.deleteProperty(globalThis, 'navigator');
    }
  });
});

describe('the missing-companion reason', () => {
  it('fits the reason limit with the longest command (Brave on macOS)', () => {
    for (const text of ['Specified native messaging host not found.', 'Access to the host is forbidden.']) {
      const failure = describeNativeError(text, ID, {
        name: 'Brave',
        browser: 'chromium',
        userDataDir: '"$HOME/Library/Application Support/BraveSoftware/Brave-Browser"',
      });
      expect(failure.reason).toContain(
        '--user-data-dir "$HOME/Library/Application Support/BraveSoftware/Brave-Browser"',
      );
      expect(failure.reason.length).toBeLessThanOrEqual(500);
    }
  });

  it('carries the command for the detected browser, within the reason limit', () => {
    const failure = describeNativeError('Specified native messaging host not found.', ID, {
      name: 'Chromium',
      browser: 'chromium',
    });
    expect(failure.code).toBe('companion-missing');
    expect(failure.reason).toContain(
      `npx underpass-companion install --browser chromium --extension-id ${ID}`,
    );
    expect(failure.reason).not.toContain('--browser chrome ');
    expect(failure.reason.length).toBeLessThanOrEqual(500);
  });

  it("recognises Firefox's wording for a missing host, with the Firefox command", () => {
    const failure = describeNativeError(
      'No such native application org.underpass.companion',
      'underpass@example.org',
      {
        name: 'Firefox',
        browser: 'firefox',
      },
    );
    expect(failure.code).toBe('companion-missing');
    expect(failure.reason).toContain(
      'npx underpass-companion install --browser firefox --extension-id underpass@example.org',
    );
    expect(failure.reason.length).toBeLessThanOrEqual(500);
  });
});
