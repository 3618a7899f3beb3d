import type { Reporter, TestCase, TestModule } from 'vitest/node';

/**
 * Names the test files whose worker process died before they finished. Vitest reports such a death only as
 * "Worker forks emitted error … Worker exited unexpectedly", without the file, and the verbose reporter lists
 * only the tests that ended. The likeliest cause here is a native crash in @roamhq/wrtc: a DataChannel `send`
 * that races the channel's close on libwebrtc's own thread dereferences a pointer that thread just cleared
 * (exit-node/src/node-peer.ts, "A crash in @roamhq/wrtc"). A core file (`ulimit -c unlimited`; read it with
 * `gdb -batch -ex bt $(which node) core`) shows it as SIGSEGV in `node_webrtc::RTCDataChannel::Send`. One in
 * `webrtc::SdpSerialize` is the description race that exit-node/src/cached-descriptions.ts keeps simple-peer out of.
 */
export default class UnfinishedFilesReporter implements Reporter {
  private readonly running = new Map<TestModule, string | undefined>();

  onTestModuleStart(testModule: TestModule): void {
    this.running.set(testModule, undefined);
  }

  onTestCaseReady(testCase: TestCase): void {
    if (this.running.has(testCase.module)) this.running.set(testCase.module, testCase.fullName);
  }

  onTestModuleEnd(testModule: TestModule): void {
    this.running.delete(testModule);
  }

  onTestRunEnd(): void {
    for (const [testModule, lastTest] of this.running) {
      const during = lastTest === undefined ? 'before its first test' : `during or after "${lastTest}"`;
      process.stderr.write(
        `\n${testModule.relativeModuleId}: its worker process died ${during}, before the file finished ` +
          `(see "Worker exited unexpectedly" above; with \`ulimit -c unlimited\` it leaves a core file).\n`,
      );
    }
    this.running.clear();
  }
}
