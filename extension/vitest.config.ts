import { defineConfig } from 'vitest/config';

// The extension's pure logic runs in Node; the browser parts are covered by the Playwright e2e tests.
export default defineConfig({
  define: {
    __UNDERPASS_DEFAULT_SIGNALING_URL__: JSON.stringify('ws://127.0.0.1:8600/'),
    __UNDERPASS_DEFAULT_DIRECTORY_KEYS__: JSON.stringify(['QfLbzHJk-WcX3Z_tCDbKR8eWMKr2YXRzntGSQZ42c5U']),
  },
  test: {
    include: ['extension/test/**/*.test.ts'],
    root: new URL('..', import.meta.url).pathname,
  },
});
