import browser from 'webextension-polyfill';
import { chromeProxyConfig, firefoxShouldBypass, type ProxyRuleInput } from './proxy-rules';
import type { SwitchError } from './switch-error';

/**
 * Points the browser's page traffic at the companion, and takes it away again. Chrome has one global
 * setting (`chrome.proxy.settings`); Firefox decides per request (`proxy.onRequest`), which needs no
 * private-browsing grant and is as strict. Applying also closes the WebRTC leak in Chrome (see apply).
 * Firefox: its WebRTC policy may also bind the background page where our own links live, which is not
 * checked yet, so it is left alone there (the README says so).
 */
export interface ProxyControl {
  apply(input: ProxyRuleInput): Promise<{ ok: true } | ({ ok: false } & SwitchError)>;
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
      const policy = await chrome.privacy.network.webRTCIPHandlingPolicy.get({});
      if (
        policy.levelOfControl === 'controllable_by_this_extension' ||
        policy.levelOfControl === 'controlled_by_this_extension'
      ) {
        await chrome.privacy.network.webRTCIPHandlingPolicy.set({
          value: 'disable_non_proxied_udp',
        });
      } else {
        await chrome.proxy.settings.clear({ scope: 'regular' });
        return {
          ok: false,
          code: 'webrtc-policy-not-controllable',
          reason:
            'Another extension or a policy controls WebRTC IP handling, so Protect cannot keep pages from revealing your address.',
        };
      }
      return { ok: true };
    },
    async clear() {
      await chrome.proxy.settings.clear({ scope: 'regular' });
      await chrome.privacy.network.webRTCIPHandlingPolicy.clear({});
    },
  };
}

type FirefoxProxyInfo = { type: 'direct' } | { type: 'socks'; host: string; port: number; proxyDNS: boolean };

export function firefoxProxyControl(): ProxyControl {
  let listener: ((details: { url: string }) => FirefoxProxyInfo) | undefined;
  const remove = () => {
    if (listener) browser.proxy.onRequest.removeListener(listener);
    listener = undefined;
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
      return { ok: true };
    },
    async clear() {
      remove();
    },
  };
}
