import { withDeadline } from '@underpass/shared/deadline';
import type { EngineChannel } from './engine-channel';
import {
  engineEventSchema,
  isFor,
  offscreenReplySchema,
  type EngineEvent,
  type OffscreenCommand,
  type OffscreenReply,
} from './messages';
import { truncateReason } from './switch-error';

/**
 * The Chrome side of EngineChannel: one offscreen document (reason WEB_RTC) hosts the engines. A restarted
 * service worker finds the running document through `runtime.getContexts` and reuses it: there is never a
 * second one, and the links it holds survive the worker. A new document says `offscreen-ready` once it
 * listens; commands wait for that rather than for a guess at its start-up time.
 */

export const OFFSCREEN_PATH = 'offscreen.html';
/** A new document loads one small script; it normally listens within a few hundred milliseconds. */
export const DEFAULT_OFFSCREEN_READY_TIMEOUT_MS = 5_000;

export function offscreenChannel(options: { readyTimeoutMs?: number } = {}): EngineChannel {
  let creating: Promise<void> | undefined;
  const url = chrome.runtime.getURL(OFFSCREEN_PATH);
  const eventListeners: ((event: EngineEvent) => void)[] = [];
  const readyWaiters = new Set<() => void>();

  chrome.runtime.onMessage.addListener((message: unknown, sender) => {
    if (sender.id !== chrome.runtime.id || !isFor(message, 'background')) return;
    const parsed = engineEventSchema.safeParse(message);
    if (!parsed.success) return;
    if (parsed.data.type === 'offscreen-ready') for (const ready of readyWaiters) ready();
    for (const listener of eventListeners) listener(parsed.data);
  });

  async function exists(): Promise<boolean> {
    const contexts = await chrome.runtime.getContexts({
      contextTypes: [chrome.runtime.ContextType.OFFSCREEN_DOCUMENT],
      documentUrls: [url],
    });
    return contexts.length > 0;
  }

  /** Resolves once a document says it listens (`offscreen-ready`), or fails after the deadline. */
  function whenReady(): { ready: Promise<void>; cancel: () => void } {
    let markReady!: () => void;
    const ready = new Promise<void>((resolve) => (markReady = resolve));
    readyWaiters.add(markReady);
    // Cancelling settles the wait, so that its deadline's timer is cleared too.
    const cancel = () => {
      readyWaiters.delete(markReady);
      markReady();
    };
    const bounded = withDeadline(ready, {
      ms: options.readyTimeoutMs ?? DEFAULT_OFFSCREEN_READY_TIMEOUT_MS,
      onTimeout: () => new Error('the offscreen document did not start listening in time'),
    }).finally(cancel);
    bounded.catch(() => {}); // whoever awaits it hears the failure; one that no longer waits must not crash
    return { ready: bounded, cancel };
  }

  async function create(): Promise<void> {
    // Listen for the new document's word before creating it: it may speak before createDocument resolves.
    const { ready, cancel } = whenReady();
    const created = await chrome.offscreen
      .createDocument({
        url: OFFSCREEN_PATH,
        reasons: [chrome.offscreen.Reason.WEB_RTC],
        justification: 'Holds the WebRTC links of Protect (client) and Volunteer (relay).',
      })
      .then(
        () => true,
        (error: unknown) => {
          // Another context won the race: the one document we want exists (deliver() waits if it is not
          // listening yet).
          if (/single offscreen/i.test(String(error))) return false;
          throw error;
        },
      )
      .catch((error: unknown) => {
        cancel();
        throw error;
      });
    if (created) await ready;
    else cancel();
  }

  async function ensure(): Promise<void> {
    if (creating) return creating;
    if (await exists()) return;
    creating ??= create().finally(() => {
      creating = undefined;
    });
    await creating;
  }

  /**
   * Sends a command. A document that exists but does not listen yet (made by a worker that died before it
   * started, or by a racing context) answers "Receiving end does not exist": then wait once for its word.
   */
  async function deliver(command: OffscreenCommand): Promise<unknown> {
    try {
      return await chrome.runtime.sendMessage(command);
    } catch (error) {
      if (!notListening(error)) throw error;
      const { ready, cancel } = whenReady();
      try {
        // It may have started listening between the two lines above: ask again before waiting.
        return await chrome.runtime.sendMessage(command);
      } catch (again) {
        if (!notListening(again)) throw again;
        await ready;
        return await chrome.runtime.sendMessage(command);
      } finally {
        cancel();
      }
    }
  }

  return {
    async send(command, { create: mayCreate }) {
      try {
        if (mayCreate) await ensure();
        else if (!(await exists()))
          return { ok: false, code: 'no-offscreen', reason: 'The engines are not running.' };
        const parsed = offscreenReplySchema.safeParse(await deliver(command));
        if (parsed.success) return parsed.data;
        return failure('The offscreen document sent a malformed reply.');
      } catch (error) {
        return failure(String(error));
      }
    },
    async release() {
      if (await exists()) await chrome.offscreen.closeDocument();
    },
    onEvent(listener: (event: EngineEvent) => void) {
      eventListeners.push(listener);
    },
  };
}

function notListening(error: unknown): boolean {
  return /receiving end does not exist/i.test(String(error));
}

function failure(reason: string): OffscreenReply {
  return { ok: false, code: 'offscreen-unreachable', reason: truncateReason(reason) };
}
