import type { EngineChannel } from './engine-channel';
import {
  engineEventSchema,
  isFor,
  offscreenReplySchema,
  type EngineEvent,
  type OffscreenReply,
} from './messages';
import { truncateReason } from './switch-error';

/**
 * The Chrome side of EngineChannel: one offscreen document (reason WEB_RTC) hosts the engines. A restarted
 * service worker finds the running document through `runtime.getContexts` and reuses it: there is never a
 * second one, and the links it holds survive the worker.
 */

export const OFFSCREEN_PATH = 'offscreen.html';
const DELIVERY_ATTEMPTS = 25;
const DELIVERY_RETRY_MS = 100;

export function offscreenChannel(): EngineChannel {
  let creating: Promise<void> | undefined;
  const url = chrome.runtime.getURL(OFFSCREEN_PATH);

  async function exists(): Promise<boolean> {
    const contexts = await chrome.runtime.getContexts({
      contextTypes: [chrome.runtime.ContextType.OFFSCREEN_DOCUMENT],
      documentUrls: [url],
    });
    return contexts.length > 0;
  }

  async function ensure(): Promise<void> {
    if (await exists()) return;
    if (!creating) {
      creating = chrome.offscreen
        .createDocument({
          url: OFFSCREEN_PATH,
          reasons: [chrome.offscreen.Reason.WEB_RTC],
          justification: 'Holds the WebRTC links of Protect (client) and Volunteer (relay).',
        })
        .catch((error: unknown) => {
          // Another caller won the race: the one document we want exists.
          if (!/single offscreen/i.test(String(error))) throw error;
        })
        .finally(() => {
          creating = undefined;
        });
    }
    await creating;
  }

  return {
    async send(command, { create }) {
      if (create) await ensure();
      else if (!(await exists()))
        return { ok: false, code: 'no-offscreen', reason: 'The engines are not running.' };
      // A fresh document may not have registered its listener yet; that shows as "Receiving end does not exist".
      let lastError = '';
      for (let attempt = 0; attempt < DELIVERY_ATTEMPTS; attempt += 1) {
        try {
          const reply: unknown = await chrome.runtime.sendMessage(command);
          const parsed = offscreenReplySchema.safeParse(reply);
          if (parsed.success) return parsed.data;
          lastError = 'The offscreen document sent a malformed reply.';
          break;
        } catch (error) {
          lastError = String(error);
          if (!/receiving end does not exist/i.test(lastError)) break;
          await new Promise((resolve) => setTimeout(resolve, DELIVERY_RETRY_MS));
        }
      }
      return {
        ok: false,
        code: 'offscreen-unreachable',
        reason: truncateReason(lastError),
      } satisfies OffscreenReply;
    },
    async release() {
      if (await exists()) await chrome.offscreen.closeDocument();
    },
    onEvent(listener: (event: EngineEvent) => void) {
      chrome.runtime.onMessage.addListener((message: unknown, sender) => {
        if (sender.id !== chrome.runtime.id) return;
        if (!isFor(message, 'background')) return;
        const parsed = engineEventSchema.safeParse(message);
        if (parsed.success) listener(parsed.data);
      });
    },
  };
}
