import browser from 'webextension-polyfill';
import { chromeProxyConfig, firefoxShouldBypass, type ProxyRuleInput } from './proxy-rules';

/**
 * Points the browser's page traffic at the companion, and takes it away again. Chrome has one global
 * setting (`chrome.proxy.settings`); Firefox decides per request (`proxy.onRequest`), which needs no
 * private-browsing grant and is as strict.
 */
export interface ProxyControl {
  apply(input: ProxyRuleInput): Promise<{ ok: true } | { ok: false; code: string; reason: string }>;
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
      return { ok: true };
    },
    async clear() {
      await chrome.proxy.settings.clear({ scope: 'regular' });
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
