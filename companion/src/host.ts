import type { Readable, Writable } from 'node:stream';
import { startCompanion, type Companion, type CompanionOptions } from './companion.js';
import { NativeMessagingPort, PROTOCOL_VERSION } from './native-messaging.js';
import { isFirefoxExtensionId } from './install.js';
import { errorMessage } from '@underpass/shared/errors';

/**
 * The native-messaging host: what the browser starts when the extension's service worker calls
 * `connectNative`. It starts the companion, tells the extension where it listens and the per-run secret, answers
 * status requests, and exits when the browser closes the port (our stdin).
 */

/** Who started us, from the arguments the browser passes. */
export type Caller =
  | { browser: 'chromium'; origin: string }
  /** Firefox passes the manifest path and the extension id; the page origin (a per-install UUID) is unknown. */
  | { browser: 'firefox'; extensionId: string };

const CHROME_ORIGIN = /^chrome-extension:\/\/[a-p]{32}\/$/;

export function parseCaller(args: readonly string[]): Caller | undefined {
  // Chrome on Windows adds --parent-window=N after the origin.
  const positional = args.filter((arg) => !arg.startsWith('--parent-window='));
  const [first, second] = positional;
  if (first !== undefined && CHROME_ORIGIN.test(first) && positional.length === 1) {
    return { browser: 'chromium', origin: first };
  }
  if (
    positional.length === 2 &&
    first?.endsWith('.json') &&
    second !== undefined &&
    isFirefoxExtensionId(second)
  ) {
    return { browser: 'firefox', extensionId: second };
  }
  return undefined;
}

export interface NativeHostOptions {
  /** The arguments after `native`. */
  args: readonly string[];
  input: Readable;
  output: Writable;
  /** Diagnostics; never stdout. */
  log: (line: string) => void;
  start?: (options: CompanionOptions) => Promise<Companion>;
}

/** Runs until the browser closes the port or sends garbage; resolves with the process exit code. */
export async function runNativeHost(options: NativeHostOptions): Promise<number> {
  const port = new NativeMessagingPort({ input: options.input, output: options.output });
  const caller = parseCaller(options.args);
  if (!caller) {
    port.send({ type: 'error', code: 'bad-caller', message: 'expected the calling extension as argument' });
    await port.flush();
    return 2;
  }

  let companion: Companion;
  try {
    const start = options.start ?? startCompanion;
    companion = await start({ extensionOrigin: caller.browser === 'chromium' ? caller.origin : undefined });
  } catch (error) {
    const message = errorMessage(error);
    options.log(`could not start: ${message}`);
    port.send({ type: 'error', code: 'start-failed', message });
    await port.flush();
    return 1;
  }
  companion.on('tunnel', (up) => options.log(up ? 'tunnel connected' : 'tunnel disconnected'));

  const exitCode = await new Promise<number>((resolve) => {
    port.on('message', (message) => {
      switch (message.type) {
        case 'status': {
          const stats = companion.stats();
          port.send({
            type: 'status',
            tunnel: stats.tunnel,
            connections: stats.connections,
            blocked: stats.blocked,
          });
          break;
        }
      }
    });
    port.on('invalid', (error, fatal) => {
      port.send({ type: 'error', code: error.code, message: error.message });
      if (fatal) {
        options.log(`bad message from the browser: ${error.message}`);
        resolve(1);
      }
    });
    port.on('end', () => resolve(0));
    port.send({
      type: 'ready',
      version: PROTOCOL_VERSION,
      socksPort: companion.socksPort,
      dataPort: companion.dataPort,
      secret: companion.secret,
    });
  });
  await companion.close();
  await port.flush();
  return exitCode;
}
