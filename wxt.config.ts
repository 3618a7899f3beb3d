import preact from '@preact/preset-vite';
import { defineConfig } from 'wxt';
import { EXTENSION_KEY, GECKO_ID } from './extension/identity';

function defaultSignalingUrl(): string {
  const raw = process.env.UNDERPASS_SIGNALING_URL ?? 'ws://127.0.0.1:8600';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`UNDERPASS_SIGNALING_URL is not a URL: ${raw}`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new Error(`UNDERPASS_SIGNALING_URL must be a ws:// or wss:// URL, got ${raw}`);
  }
  return url.toString();
}

export default defineConfig({
  srcDir: 'extension',
  publicDir: 'extension/public',
  // Every import is written out: easier to audit than names that appear from nowhere.
  imports: false,
  vite: () => ({
    plugins: [preact()],
    define: {
      __UNDERPASS_DEFAULT_SIGNALING_URL__: JSON.stringify(defaultSignalingUrl()),
    },
    resolve: {
      // simple-peer (through streamx → events-universal) requires Node's `events`; Vite would externalize it
      // as an empty browser stub, which breaks `class extends EventEmitter` at run time. The trailing slash
      // makes Vite resolve the npm package of that name instead of the built-in.
      alias: { events: 'events/' },
    },
  }),
  manifest: ({ browser }) => ({
    name: '__MSG_extName__',
    description: '__MSG_extDescription__',
    default_locale: 'en',
    permissions: [
      'proxy',
      // WebRTC IP handling while protected (pages must not learn the real address over WebRTC).
      'privacy',
      'storage',
      'nativeMessaging',
      'alarms',
      // Downloads saves finished files with the browser's own downloads.
      'downloads',
      // "Download with Underpass" on magnet and .torrent links (no content script in pages for it).
      'contextMenus',
      ...(browser === 'firefox' ? [] : ['offscreen']),
    ],
    host_permissions: ['<all_urls>'],
    ...(browser === 'firefox'
      ? { browser_specific_settings: { gecko: { id: GECKO_ID, strict_min_version: '115.0' } } }
      : { key: EXTENSION_KEY }),
  }),
});
