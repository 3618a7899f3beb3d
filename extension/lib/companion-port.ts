import { z } from 'zod';
import { type Clock } from '@underpass/shared/clock';
import { dataPortSecretSchema, pairingSchema } from '@underpass/shared/data-port';
import { withDeadline } from '@underpass/shared/deadline';
import { Emitter } from '@underpass/shared/emitter';
import { errorMessage, toUnderpassError, UnderpassError } from '@underpass/shared/errors';
import { browserClues, detectBrowser, installCommand, type DetectedBrowser } from './install-hint';
import { truncateReason } from './switch-error';

/**
 * The service worker's side of the companion's native-messaging port. `connectNative` exists only in the
 * background (not in the offscreen document), so the worker starts the companion, waits for its `ready`
 * line and hands the data port and secret to the offscreen document. Keeping the port open keeps the
 * companion (and the MV3 worker) alive; disconnecting it makes the companion exit.
 */

export const COMPANION_HOST_NAME = 'org.underpass.companion';
export const DEFAULT_COMPANION_READY_TIMEOUT_MS = 10_000;
/** The companion has no business sending much before `ready`; more than this is a broken host. */
const MAX_MESSAGES_BEFORE_READY = 16;

const readySchema = z.object({
  type: z.literal('ready'),
  version: z.literal(1),
  // The ports and the secret are those a pairing code carries: the data port's protocol.
  socksPort: pairingSchema.shape.socksPort,
  dataPort: pairingSchema.shape.dataPort,
  secret: dataPortSecretSchema,
});
const hostErrorSchema = z.object({
  type: z.literal('error'),
  code: z.string().max(64).optional(),
  message: z.string().max(2000),
});

export type CompanionReady = z.infer<typeof readySchema>;
export type CompanionFailure = { code: string; reason: string };
export type CompanionOpenResult =
  { ok: true; ready: CompanionReady } | { ok: false; failure: CompanionFailure };

/**
 * What Protect needs from a companion, however it was started: the ports and secret once it is up, and word
 * if it goes away. Native messaging (CompanionPort) and a hand-started, paired companion both provide it.
 */
export interface CompanionHandle {
  open(): Promise<CompanionOpenResult>;
  on(event: 'closed', listener: (failure: CompanionFailure) => void): unknown;
  close(): void;
}

/** Said wherever native messaging fails: the way out when it cannot work at all in this browser. */
export const PAIRING_HINT =
  'If native messaging cannot work here, start the companion by hand (underpass-companion serve) and paste its pairing code in the Underpass settings page.';

/** The subset of `chrome.runtime.Port` used here, so tests and the Firefox build can supply their own. */
export type NativePortLike = {
  postMessage(message: unknown): void;
  disconnect(): void;
  onMessage: { addListener(listener: (message: unknown) => void): void };
  onDisconnect: { addListener(listener: () => void): void };
  /** Firefox reports the cause here; Chrome in `runtime.lastError`. */
  error?: { message?: string } | null;
};

export type CompanionPortOptions = {
  connect: (hostName: string) => NativePortLike;
  /** Reads the browser's last error for a disconnect (Chrome's `runtime.lastError`). */
  lastError: () => string | undefined;
  extensionId: string;
  /** Names the install command's browser. Default: detected from this context's navigator. */
  browser?: DetectedBrowser;
  readyTimeoutMs?: number;
  clock?: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
};

type CompanionEvents = {
  /** The port closed after `ready`; Protect cannot work without it. */
  closed: [failure: CompanionFailure];
  /** A well-formed error line from the companion after `ready` (informational). */
  'host-error': [failure: CompanionFailure];
};

export class CompanionPort extends Emitter<CompanionEvents> implements CompanionHandle {
  private port: NativePortLike | undefined;
  private closedByUs = false;

  constructor(private readonly options: CompanionPortOptions) {
    super();
  }

  /** Starts the companion and resolves with its `ready` line, or with a failure whose reason a user can act on. */
  async open(): Promise<CompanionOpenResult> {
    const timeoutMs = this.options.readyTimeoutMs ?? DEFAULT_COMPANION_READY_TIMEOUT_MS;
    const result = await withDeadline(this.connectAndWaitForReady(), {
      ms: timeoutMs,
      onTimeout: () =>
        new UnderpassError(
          'companion-timeout',
          `The companion did not report ready within ${Math.round(timeoutMs / 1000)} s. ${PAIRING_HINT}`,
        ),
      clock: this.options.clock,
    }).catch((error: unknown): CompanionOpenResult => {
      const { code, message } = toUnderpassError(error, 'companion-failed');
      return { ok: false, failure: { code, reason: message } };
    });
    if (!result.ok) this.close();
    return result;
  }

  /** Never rejects: resolves with `ready` or a failure; open() bounds how long it may take. */
  private connectAndWaitForReady(): Promise<CompanionOpenResult> {
    const { options } = this;
    return new Promise((resolve) => {
      let settled = false;
      let messagesBeforeReady = 0;
      const settle = (result: CompanionOpenResult) => {
        if (settled) return;
        settled = true;
        resolve(result);
      };

      let port: NativePortLike;
      try {
        port = options.connect(COMPANION_HOST_NAME);
      } catch (error) {
        settle({
          ok: false,
          failure: describeNativeError(errorMessage(error), options.extensionId, options.browser),
        });
        return;
      }
      this.port = port;

      port.onMessage.addListener((message) => {
        if (!settled) {
          const ready = readySchema.safeParse(message);
          if (ready.success) {
            settle({ ok: true, ready: ready.data });
            return;
          }
          const hostError = hostErrorSchema.safeParse(message);
          if (hostError.success) {
            settle({
              ok: false,
              failure: {
                code: hostError.data.code ?? 'companion-error',
                reason: truncateReason(`The companion failed to start: ${hostError.data.message}`),
              },
            });
            return;
          }
          messagesBeforeReady += 1;
          if (messagesBeforeReady > MAX_MESSAGES_BEFORE_READY) {
            settle({
              ok: false,
              failure: {
                code: 'companion-protocol',
                reason: 'The companion sent unexpected messages instead of ready.',
              },
            });
          }
          return;
        }
        const hostError = hostErrorSchema.safeParse(message);
        if (hostError.success) {
          this.emit('host-error', {
            code: hostError.data.code ?? 'companion-error',
            reason: truncateReason(hostError.data.message),
          });
        }
      });

      port.onDisconnect.addListener(() => {
        // Reading lastError inside the listener also stops Chrome logging it as unchecked.
        const text = options.lastError() ?? port.error?.message ?? undefined;
        const failure = describeNativeError(text, options.extensionId, options.browser);
        this.port = undefined;
        if (!settled) {
          settle({ ok: false, failure });
          return;
        }
        if (!this.closedByUs) this.emit('closed', failure);
      });
    });
  }

  /** Disconnects the port; the companion exits when its stdin closes. */
  close(): void {
    this.closedByUs = true;
    const port = this.port;
    this.port = undefined;
    try {
      port?.disconnect();
    } catch {
      // Already disconnected: nothing left to release.
    }
  }
}

/** Turns the browser's native-messaging error strings into a code and a reason that says what to do. */
export function describeNativeError(
  text: string | undefined,
  extensionId: string,
  browser: DetectedBrowser = detectBrowser(browserClues(import.meta.env.FIREFOX === true)),
): CompanionFailure {
  // In a source checkout too: npx finds the workspace's own bin there.
  const install = installCommand(browser, extensionId);
  const message = text ?? '';
  // Chrome: "Specified native messaging host not found."; Firefox: "No such native application <name>".
  if (/not found|no such native application/i.test(message)) {
    return {
      code: 'companion-missing',
      reason: `The Underpass companion is not installed. Install it with: ${install}, then turn Protect on again. ${PAIRING_HINT}`,
    };
  }
  if (/forbidden/i.test(message)) {
    return {
      code: 'companion-forbidden',
      reason: `The companion is installed but does not allow this extension (${extensionId}). Reinstall it with: ${install}. ${PAIRING_HINT}`,
    };
  }
  if (/exited/i.test(message)) {
    return {
      code: 'companion-exited',
      reason: 'The companion exited. Turn Protect off and on to restart it.',
    };
  }
  return {
    code: 'companion-failed',
    reason: truncateReason(
      `Could not talk to the companion${message ? ` (${message.slice(0, 200)})` : ''}. ${PAIRING_HINT}`,
    ),
  };
}
