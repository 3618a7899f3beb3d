import browser from 'webextension-polyfill';
import {
  chromeProxyConfig,
  firefoxShouldBypass,
  type BlockRuleInput,
  type ProxyRuleInput,
} from './proxy-rules';
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
  /**
   * Protect is wanted but no companion is up yet (it comes back after the browser restarted): pages fail, never
   * go direct, and our own connections (`rules`: the signaling server) and new links may still be made, until
   * `apply` points pages at a companion.
   */
  block(rules: BlockRuleInput): Promise<void>;
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
    async block() {
      // Chrome keeps an extension's proxy setting across a restart: it still points at the previous companion's
      // SOCKS port, which died with the browser and refuses, until apply points it at the new one.
    },
    async clear() {
      await chrome.proxy.settings.clear({ scope: 'regular' });
      await chrome.privacy.network.webRTCIPHandlingPolicy.clear({});
    },
  };
}

type FirefoxProxyInfo = { type: 'direct' } | { type: 'socks'; host: string; port: number; proxyDNS: boolean };
/**
 * What a `proxy.onRequest` listener answers: one proxy, or a list tried in order. `null` last in a list means
 * no fallback: without it Firefox falls back to the browser's own proxy setting when ours cannot be reached,
 * which would let pages out another way (ProxyChannelFilter: `createProxyInfoFromData`). `undefined`: the
 * browser's own setting, as if we were not there.
 */
type FirefoxProxyAnswer = FirefoxProxyInfo | [FirefoxProxyInfo, null] | undefined;

const DIRECT: FirefoxProxyInfo = { type: 'direct' };

/**
 * Where a blocked page request is sent: a SOCKS proxy at a multicast address, on which no host can accept a TCP
 * connection, so nothing can answer in the companion's place (a closed loopback port could be taken by another
 * program). Measured in ESR 153: the request fails at once with NS_ERROR_PROXY_CONNECTION_REFUSED and never
 * goes direct. (An invalid answer, a port 0 say, would be worse than none: Firefox then uses its own setting.)
 */
const REFUSING_PROXY: [FirefoxProxyInfo, null] = [
  { type: 'socks', host: '224.0.0.1', port: 1080, proxyDNS: true },
  null,
];

/** Where Firefox's page requests go: decided per request from this. */
type FirefoxRoute =
  /** The background page just started: requests wait until it knows whether Protect is wanted. */
  | { kind: 'undecided' }
  /** Protect is wanted, no companion is up yet: pages fail, only our own connections go out. */
  | { kind: 'blocked'; rules: BlockRuleInput }
  | { kind: 'companion'; input: ProxyRuleInput }
  /** Protect is off: the browser's own setting. */
  | { kind: 'none' };

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
 * requests are refused by the kill switch), the browser's own choice once Protect is off. Firefox keeps an
 * add-on's setting across a restart, so a Protect that comes back after one starts from `proxy_only` and must
 * loosen it (block) before its first link. Our other links make do with that: Volunteer takes no new people
 * while Protect is on (features/volunteer/held-by-protect.ts), and Downloads ride Protect's path, over the link it
 * already has (features/downloads/downloads-route.ts).
 */
const FIREFOX_PATH_UP_POLICY = 'proxy_only';
const FIREFOX_REBUILD_POLICY = 'disable_non_proxied_udp';

/**
 * Firefox's proxy control. Its listener is registered at once, when the background page starts (call this
 * synchronously there), and never removed: Firefox remembers only a `proxy.onRequest` listener added
 * synchronously as the background page starts, and at the next start holds the browser's first requests (a
 * restored session's tabs) until the background page has run and answered them. A listener added later, when
 * Protect is turned on, is not remembered (ExtensionCommon's EventManager): measured, a page the browser opened
 * as it started then went direct in one restart of three. Until `block`, `apply` or `clear` says what the user wants, requests wait; while
 * Protect is off the listener answers nothing (the browser's own setting).
 */
export function firefoxProxyControl(): ProxyControl {
  const setting = browser.privacy.network.webRTCIPHandlingPolicy;
  let route: FirefoxRoute = { kind: 'undecided' };
  let decide: () => void = () => {};
  const decided = new Promise<void>((resolve) => {
    decide = resolve;
  });
  let up = true;
  let policySet: string | undefined;

  const answer = (url: string): FirefoxProxyAnswer => {
    switch (route.kind) {
      case 'undecided':
      case 'none':
        return undefined;
      case 'blocked':
        return firefoxShouldBypass(url, route.rules) ? DIRECT : REFUSING_PROXY;
      case 'companion':
        return firefoxShouldBypass(url, route.input)
          ? DIRECT
          : [{ type: 'socks', host: '127.0.0.1', port: route.input.socksPort, proxyDNS: true }, null];
    }
  };
  const onRequest = (details: { url: string }): FirefoxProxyAnswer | Promise<FirefoxProxyAnswer> =>
    route.kind === 'undecided' ? decided.then(() => answer(details.url)) : answer(details.url);
  browser.proxy.onRequest.addListener(onRequest, { urls: ['<all_urls>'] });
  const setRoute = (next: FirefoxRoute) => {
    route = next;
    decide();
  };
  const setPolicy = async (value: string) => {
    if (policySet === value) return;
    await setting.set({ value });
    policySet = value;
  };
  return {
    async apply(input) {
      if (!(await canSetPolicy(setting))) {
        // Pages stay blocked if they were; otherwise Protect does not start and nothing is routed.
        if (route.kind !== 'blocked') setRoute({ kind: 'none' });
        return WEBRTC_POLICY_NOT_CONTROLLABLE;
      }
      setRoute({ kind: 'companion', input });
      await setPolicy(up ? FIREFOX_PATH_UP_POLICY : FIREFOX_REBUILD_POLICY);
      return { ok: true };
    },
    async block(rules) {
      setRoute({ kind: 'blocked', rules });
      up = false;
      if (await canSetPolicy(setting)) await setPolicy(FIREFOX_REBUILD_POLICY);
    },
    async pathUp(pathIsUp) {
      up = pathIsUp;
      if (route.kind === 'companion') await setPolicy(up ? FIREFOX_PATH_UP_POLICY : FIREFOX_REBUILD_POLICY);
    },
    async clear() {
      setRoute({ kind: 'none' });
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
