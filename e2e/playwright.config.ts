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
  // Two browsers, WebRTC and several servers on a shared 2-core machine: in CI one retry absorbs a stall,
  // and the list reporter still prints the test as flaky, so a pattern does not go unnoticed.
  retries: process.env.CI ? 1 : 0,
});
