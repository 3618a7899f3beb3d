/**
 * Which proxy settings Protect installs. Pure functions, so the rules can be read (and tested) apart from
 * the browser APIs that apply them.
 *
 * Why the bypass list has what it has: the extension's own connections go through the proxy setting too
 * (checked, see PLATFORM-NOTES). The signaling WebSocket must not, or a dead path could never be rebuilt;
 * the companion's data WebSocket must not, or the tunnel would carry itself. `<-loopback>` removes
 * Chrome's implicit loopback bypass and is for tests that serve a website on 127.0.0.1 only.
 */

export type ProxyRuleInput = {
  socksPort: number;
  dataPort: number;
  signalingUrl: string;
  routeLoopback: boolean;
  /** Sites the user chose to send direct: host names, `*.` for subdomains too. */
  bypassSites: readonly string[];
};

/** What the rules need before a companion is up (no ports yet): what still goes direct while pages are blocked. */
export type BlockRuleInput = Omit<ProxyRuleInput, 'socksPort' | 'dataPort'>;

/** `host:port` of the signaling server as Chrome's bypass rules spell it (IPv6 hosts keep their brackets). */
export function signalingHostPort(signalingUrl: string): string {
  const url = new URL(signalingUrl);
  const port = url.port || (url.protocol === 'wss:' ? '443' : '80');
  return `${url.hostname}:${port}`;
}

/**
 * In Chrome's bypass list a later rule overrides an earlier one, and `<-loopback>` matches every loopback host:
 * a user's bypass sites come after it, or a loopback one would be proxied (measured: `127.0.0.2` listed before
 * it was). So does the companion's data port: a companion started again after a crash listens on a new one,
 * which the offscreen document dials while the proxy is set; before `<-loopback>` that dial went through the
 * proxy and was refused (e2e/companion-crash.spec). The signaling server stays before it, where it has always
 * been: moving it after made e2e/volunteer.spec fail 3 times in 4 (a relay kept counting a client that had
 * gone), which is not understood yet. With routeLoopback (tests only) it is therefore not exempt on loopback.
 */
export function bypassList(input: Omit<ProxyRuleInput, 'socksPort'>): string[] {
  return [
    signalingHostPort(input.signalingUrl),
    ...(input.routeLoopback ? ['<-loopback>'] : []),
    `127.0.0.1:${input.dataPort}`,
    ...input.bypassSites,
  ];
}

/** Chrome's `chrome.proxy.settings` value: every request through the companion's SOCKS5 port. */
export function chromeProxyConfig(input: ProxyRuleInput): chrome.proxy.ProxyConfig {
  return {
    mode: 'fixed_servers',
    rules: {
      singleProxy: { scheme: 'socks5', host: '127.0.0.1', port: input.socksPort },
      bypassList: bypassList(input),
    },
  };
}

/**
 * Firefox decides per request (`proxy.onRequest`), so the same rules are a predicate there. Loopback goes
 * direct unless routeLoopback, like Chrome's implicit rule.
 */
export function firefoxShouldBypass(
  requestUrl: string,
  input: BlockRuleInput & { dataPort?: number },
): boolean {
  let url: URL;
  try {
    url = new URL(requestUrl);
  } catch {
    // A request we cannot read goes through the tunnel: the kill switch fails closed, never open.
    return false;
  }
  const port = url.port || defaultPort(url.protocol);
  const hostPort = `${url.hostname}:${port}`;
  if (hostPort === signalingHostPort(input.signalingUrl)) return true;
  if (input.dataPort !== undefined && hostPort === `127.0.0.1:${input.dataPort}`) return true;
  if (!input.routeLoopback && isLoopbackHost(url.hostname)) return true;
  return input.bypassSites.some((site) => siteMatches(site, url.hostname));
}

/** Chrome's bypass semantics for a host pattern: `example.org` is that host, `*.example.org` its subdomains. */
export function siteMatches(site: string, hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (site.startsWith('*.')) return host.endsWith(site.slice(1));
  return host === site;
}

function defaultPort(protocol: string): string {
  return protocol === 'https:' || protocol === 'wss:' ? '443' : '80';
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}
