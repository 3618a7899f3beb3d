import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{shared,signaling-server,exit-node,companion,test}/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // One test file at a time: on two cores, files side by side bought no time (176 s one at a time against
    // 204 s in parallel, measured) and made the real-WebRTC tests of several files contend for the CPU, the
    // likeliest cause of their rare handshake timeouts and closed links in CI.
    fileParallelism: false,
    // Each file runs in a process of its own (pool forks, isolate by default). One that dies (a native crash
    // in @roamhq/wrtc) is reported by vitest without its file; this reporter names it.
    reporters: ['default', './test/unfinished-files-reporter.ts'],
  },
});
