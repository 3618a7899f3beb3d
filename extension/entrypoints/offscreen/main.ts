import { browserConditionSource, type NavigatorLike } from '../../features/volunteer/browser-conditions';
import { EngineHost } from '../../lib/engine-host';
import { isFor, offscreenCommandSchema, type EngineEvent, type OffscreenReply } from '../../lib/messages';
import { createPeer } from '../../lib/peer-factory';
import { truncateReason } from '../../lib/switch-error';

/**
 * The offscreen document (Chrome): MV3 service workers have no RTCPeerConnection, so the engines live here.
 * Only `chrome.runtime` messaging exists in this context. Commands come from the background; every state
 * change and counter goes back as a message addressed to it.
 */

const host = new EngineHost({
  createPeer,
  WebSocket,
  // Battery and connection type are told to documents, not to the service worker: read them here.
  conditions: () => browserConditionSource(navigator as NavigatorLike),
});

host.on('event', (event: EngineEvent) => {
  chrome.runtime.sendMessage(event).catch(() => {
    // The worker is restarting; it asks for `status` when it is back, so nothing is lost for good.
  });
});

chrome.runtime.onMessage.addListener(
  (message: unknown, sender, sendResponse: (reply: OffscreenReply) => void) => {
    if (sender.id !== chrome.runtime.id) return undefined;
    if (!isFor(message, 'offscreen')) return undefined;
    const parsed = offscreenCommandSchema.safeParse(message);
    if (!parsed.success) {
      sendResponse({
        ok: false,
        code: 'bad-command',
        reason: truncateReason(parsed.error.issues[0]?.message ?? 'malformed command'),
      });
      return undefined;
    }
    sendResponse({ ok: true, status: host.handle(parsed.data) });
    return undefined;
  },
);

addEventListener('pagehide', () => host.shutdown());

void chrome.runtime
  .sendMessage({ target: 'background', type: 'offscreen-ready' } satisfies EngineEvent)
  .catch(() => {});
