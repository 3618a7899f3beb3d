import browser from 'webextension-polyfill';
import type { EngineChannel } from './engine-channel';
import { EngineHost } from './engine-host';
import { browserConditionSource, type NavigatorLike } from '../features/volunteer/browser-conditions';
import { bridgePagesToHost, type PageRuntime } from './in-page-bridge';
import type { EngineEvent } from './messages';
import { createPeer } from './peer-factory';

/**
 * The Firefox side of EngineChannel: the MV2 background page has RTCPeerConnection, so the engines run
 * right here and commands are plain calls. The extension's pages reach the same host through runtime
 * messages, as they reach the offscreen document in Chrome (in-page-bridge.ts).
 */
export function inPageChannel(): EngineChannel {
  const host = new EngineHost({
    createPeer,
    WebSocket: globalThis.WebSocket,
    conditions: () => browserConditionSource(navigator as NavigatorLike),
    // Firefox's WebRTC policy binds this page's new links while Protect is on (lib/proxy-control.ts).
    sharesProtectPath: true,
  });
  // The polyfill's listener type is wider (any message, any reply); the bridge needs only this part.
  bridgePagesToHost({ runtime: browser.runtime as unknown as PageRuntime, host });
  return {
    async send(command) {
      return { ok: true, status: host.handle(command) };
    },
    async release() {
      // Nothing to release: the background page lives as long as the browser.
    },
    onEvent(listener: (event: EngineEvent) => void) {
      host.on('event', listener);
    },
  };
}
