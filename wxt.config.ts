import preact from '@preact/preset-vite';
import type { Rollup } from 'vite';
import { defineConfig } from 'wxt';
import { EXTENSION_KEY, GECKO_ID } from './extension/identity';
import {
  brandIconPaths,
  TOOLBAR_ICON_SIZES,
  toolbarIconFile,
  toolbarIconPaths,
} from './extension/lib/toolbar-icon';
import { encodeDirectoryKey, parseDirectoryKeys } from './shared/src/trust/directory-key';
import { DEVELOPMENT_DIRECTORY_KEY_TEXT } from './shared/src/trust/development';

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

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * The directory keys the build trusts (UNDERPASS_DIRECTORY_KEYS: base64url public keys separated by spaces or
 * commas). Unset, a build for a loopback signaling server (npm start, the tests) trusts the embedded
 * DEVELOPMENT key; a build for any other server must name its network's keys, or it fails here.
 */
function defaultDirectoryKeys(): string[] {
  const raw = process.env.UNDERPASS_DIRECTORY_KEYS;
  if (raw === undefined || raw.trim() === '') {
    const host = new URL(defaultSignalingUrl()).hostname;
    if (LOOPBACK_HOSTS.has(host)) return [DEVELOPMENT_DIRECTORY_KEY_TEXT];
    throw new Error(
      `UNDERPASS_DIRECTORY_KEYS must name the network's directory keys for a build against ${host} ` +
        '(README, "Running a signaling server or an exit node for real")',
    );
  }
  const parsed = parseDirectoryKeys(raw);
  if (!parsed.ok) throw new Error(`UNDERPASS_DIRECTORY_KEYS: ${parsed.entry}: ${parsed.reason}`);
  if (parsed.keys.length === 0) throw new Error('UNDERPASS_DIRECTORY_KEYS names no key');
  return parsed.keys.map(encodeDirectoryKey);
}

const STORE_BUILD = process.env.UNDERPASS_STORE_BUILD === '1';

/**
 * Rollup's INVALID_ANNOTATION for zod only: zod puts a `@__PURE__` where Rollup cannot use it and Rollup drops
 * the comment (the code is unchanged), once per file and build. Every other warning, zod's included, stays.
 */
function isKnownNoise(warning: Rollup.RollupLog): boolean {
  return warning.code === 'INVALID_ANNOTATION' && /[\\/]node_modules[\\/]zod[\\/]/.test(warning.id ?? '');
}

/**
 * The toolbar button's picture until the background paints its state (extension/lib/toolbar-icon.ts). Chrome
 * cannot tell a dark toolbar from a light one here, so it gets the brand tile, which reads on both; Firefox
 * picks the "off" picture for its theme itself (`theme_icons`: its `light` is the picture for a dark toolbar,
 * drawn light). MV2 names the key `browser_action`; WXT adds the popup to it.
 */
function toolbarButton(browser: string) {
  if (browser !== 'firefox') return { action: { default_icon: brandIconPaths() } };
  return {
    browser_action: {
      default_icon: toolbarIconPaths('off', 'light'),
      theme_icons: TOOLBAR_ICON_SIZES.map((size) => ({
        light: toolbarIconFile('off', 'dark', size),
        dark: toolbarIconFile('off', 'light', size),
        size,
      })),
    },
  };
}

export default defineConfig({
  srcDir: 'extension',
  ...(STORE_BUILD ? { outDir: '.output/store' } : {}),
  publicDir: 'extension/public',
  // Every import is written out: easier to audit than names that appear from nowhere.
  imports: false,
  vite: () => ({
    plugins: [preact()],
    define: {
      __UNDERPASS_DEFAULT_SIGNALING_URL__: JSON.stringify(defaultSignalingUrl()),
      __UNDERPASS_DEFAULT_DIRECTORY_KEYS__: JSON.stringify(defaultDirectoryKeys()),
    },
    build: {
      rollupOptions: {
        // onLog, not onwarn: @preact/preset-vite sets its own onwarn, which would replace ours; Vite passes
        // its handler (the preset's filter, then Vite's logger) on to this one.
        onLog(level, log, handler) {
          if (level === 'warn' && isKnownNoise(log)) return;
          handler(level, log);
        },
      },
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
    icons: brandIconPaths(),
    ...toolbarButton(browser),
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
      : // The key pins the development id (extension/identity.ts); the Chrome Web Store refuses a manifest that
        // has one and assigns its own id. `npm run package` builds the store zips this way, in their own folder.
        STORE_BUILD
        ? {}
        : { key: EXTENSION_KEY }),
  }),
});
