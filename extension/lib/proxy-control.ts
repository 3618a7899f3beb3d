import browser from 'webextension-polyfill';
import { chromeProxyConfig, firefoxShouldBypass, type ProxyRuleInput } from './proxy-rules';
import type { SwitchError } from './switch-error';

/**
 * Points the browser's page traffic at the companion, and takes it away again. Chrome has one global
 * setting (`chrome.proxy.settings`); Firefox decides per request (`proxy.onRequest`), which needs no
 * private-browsing grant and is as strict. Applying also closes pages' WebRTC leak, in both (see apply).
 */
export interface ProxyControl {
  /** Points page traffic at the companion; called once the first path is up, and again when settings change. */
  apply(input: ProxyRuleInput): Promise<{ ok: true } | ({ ok: false } & SwitchError)>;
  /**
   * While the proxy is set: the path is up (true) or being built again (false). Firefox holds pages' WebRTC
   * tighter while no new link of ours is needed (see firefoxProxyControl); Chrome needs no such change.
   */
  pathUp(up: boolean): Promise<void>;
  clear(): Promise<void>;
}

export function chromeProxyControl(): ProxyControl {
  return {
    async apply(input) {
      const current = await chrome.proxy.settings.get({ incognito: false });
      if (
        current.levelOfControl === 'controlled_by_other_extensions' ||
        current.levelOfControl === 'not_controllable'
      ) {
        return {
          ok: false,
          code: 'proxy-not-controllable',
          reason:
            current.levelOfControl === 'not_controllable'
              ? 'The proxy setting is locked by policy, so Protect cannot route traffic.'
              : 'Another extension controls the proxy setting. Disable it to use Protect.',
        };
      }
      await chrome.proxy.settings.set({ value: chromeProxyConfig(input), scope: 'regular' });
      // Pages must not learn the real address over WebRTC: with this policy they gather no non-proxied UDP
      // candidates at all. It does not bind extension pages, so our own links keep working (PLATFORM-NOTES).
      if (await setWebRtcPolicy(chrome.privacy.network.webRTCIPHandlingPolicy)) return { ok: true };
      await chrome.proxy.settings.clear({ scope: 'regular' });
      return WEBRTC_POLICY_NOT_CONTROLLABLE;
    },
    async pathUp() {
      // Chrome's policy binds pages only, never our own links: one setting serves the whole session.
    },
    async clear() {
      await chrome.proxy.settings.clear({ scope: 'regular' });
      await chrome.privacy.network.webRTCIPHandlingPolicy.clear({});
    },
  };
}

type FirefoxProxyInfo = { type: 'direct' } | { type: 'socks'; host: string; port: number; proxyDNS: boolean };

/**
 * Firefox's WebRTC policy binds the add-on's background page too (unlike Chrome's), where our own links live,
 * and it has no setting that keeps pages off UDP while sparing us (PLATFORM-NOTES, "Firefox"). What it does
 * have, measured in ESR 153:
 * - `proxy_only`: a page gathers nothing and connects to nothing, not even to a server that offers its own
 *   candidates. Links already connected keep working; new ones cannot connect.
 * - `disable_non_proxied_udp` (no host candidates, default interface only): a page gathers none of the
 *   machine's addresses, but it still answers a peer that offers candidates (peer-reflexive), so a hostile
 *   server can see the address, and with a STUN server a page would learn the public one. Our own new links
 *   connect the same way, to the relay or exit that offers its candidates.
 * So: `proxy_only` while the path is up, `disable_non_proxied_udp` while a new path is built (and pages'
 * requests are refused by the kill switch), the browser's own choice once Protect is off.
 */
const FIREFOX_PATH_UP_POLICY = 'proxy_only';
const FIREFOX_REBUILD_POLICY = 'disable_non_proxied_udp';

export function firefoxProxyControl(): ProxyControl {
  const setting = browser.privacy.network.webRTCIPHandlingPolicy;
  let listener: ((details: { url: string }) => FirefoxProxyInfo) | undefined;
  let up = true;
  let policySet: string | undefined;
  const remove = () => {
    if (listener) browser.proxy.onRequest.removeListener(listener);
    listener = undefined;
  };
  const setPolicy = async (value: string) => {
    if (policySet === value) return;
    await setting.set({ value });
    policySet = value;
  };
  return {
    async apply(input) {
      remove();
      const onRequest = (details: { url: string }): FirefoxProxyInfo =>
        firefoxShouldBypass(details.url, input)
          ? { type: 'direct' }
          : { type: 'socks', host: '127.0.0.1', port: input.socksPort, proxyDNS: true };
      listener = onRequest;
      browser.proxy.onRequest.addListener(onRequest, { urls: ['<all_urls>'] });
      if (!(await canSetPolicy(setting))) {
        remove();
        return WEBRTC_POLICY_NOT_CONTROLLABLE;
      }
      await setPolicy(up ? FIREFOX_PATH_UP_POLICY : FIREFOX_REBUILD_POLICY);
      return { ok: true };
    },
    async pathUp(pathIsUp) {
      up = pathIsUp;
      if (listener) await setPolicy(up ? FIREFOX_PATH_UP_POLICY : FIREFOX_REBUILD_POLICY);
    },
    async clear() {
      remove();
      up = true;
      policySet = undefined;
      await setting.clear({});
    },
  };
}

/** The part of a browser setting (`chrome.types.ChromeSetting`, Firefox's `types.Setting`) used here. */
interface PolicySetting {
  get(details: object): Promise<{ levelOfControl: string }>;
  set(details: { value: string }): Promise<unknown>;
}

const WEBRTC_POLICY_NOT_CONTROLLABLE = {
  ok: false,
  code: 'webrtc-policy-not-controllable',
  reason:
    'Another extension or a policy controls WebRTC IP handling, so Protect cannot keep pages from revealing your address.',
} as const;

/**
 * Chrome: pages may use no non-proxied UDP, so they gather none of the machine's addresses. False when another
 * extension or a policy holds the setting.
 */
async function setWebRtcPolicy(setting: PolicySetting): Promise<boolean> {
  if (!(await canSetPolicy(setting))) return false;
  await setting.set({ value: 'disable_non_proxied_udp' });
  return true;
}

async function canSetPolicy(setting: PolicySetting): Promise<boolean> {
  const { levelOfControl } = await setting.get({});
  return (
    levelOfControl === 'controllable_by_this_extension' || levelOfControl === 'controlled_by_this_extension'
  );
}
