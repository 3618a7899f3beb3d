import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: '.',
  testMatch: '*.spec.ts',
  outputDir: 'artifacts',
  reporter: 'list',
  workers: 1,
  fullyParallel: false,
  timeout: 120_000,
  expect: { timeout: 30_000 },
  // No retries, in CI either: a spec that fails once has a cause to find (the last one was a relay that kept a
  // departed client's link, fixed in PeerLink), and a retry would hide the next one.
  retries: 0,
  projects: [
    // Real Chromium (/usr/bin/chromium or CHROMIUM_PATH) through Playwright.
    { name: 'chromium', testIgnore: 'firefox/**' },
    // Real Firefox (firefox-esr, or FIREFOX_PATH) through puppeteer-core over WebDriver BiDi (fixtures/firefox.ts);
    // Playwright runs the specs. Chromium still plays the volunteer where one is needed.
    { name: 'firefox', testDir: './firefox' },
  ],
});
