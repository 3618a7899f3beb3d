import { beforeEach, describe, expect, it, vi } from 'vitest';

/**
 * Firefox's proxy control against an in-memory `browser.proxy` and `browser.privacy`: the per-request rule, and
 * pages' WebRTC policy by the path's state (strict while it is up, looser while our new links are made).
 */

type ProxyListener = (details: { url: string }) => unknown;
const fake = vi.hoisted(() => ({
  listeners: new Set<(details: { url: string }) => unknown>(),
  policy: 'default',
  levelOfControl: 'controllable_by_this_extension',
  sets: [] as string[],
}));

vi.mock('webextension-polyfill', () => ({
  default: {
    proxy: {
      onRequest: {
        addListener: (listener: ProxyListener) => fake.listeners.add(listener),
        removeListener: (listener: ProxyListener) => fake.listeners.delete(listener),
      },
    },
    privacy: {
      network: {
        webRTCIPHandlingPolicy: {
          async get() {
            return { value: fake.policy, levelOfControl: fake.levelOfControl };
          },
          async set({ value }: { value: string }) {
            fake.sets.push(value);
            fake.policy = value;
          },
          async clear() {
            fake.sets.push('cleared');
            fake.policy = 'default';
          },
        },
      },
    },
  },
}));

const { firefoxProxyControl } = await import('../lib/proxy-control');

const INPUT = {
  socksPort: 1080,
  dataPort: 4000,
  signalingUrl: 'ws://127.0.0.1:8600/',
  routeLoopback: false,
  bypassSites: [],
};

function route(url: string): unknown {
  const [listener] = fake.listeners;
  return listener?.({ url });
}

beforeEach(() => {
  fake.listeners.clear();
  fake.policy = 'default';
  fake.levelOfControl = 'controllable_by_this_extension';
  fake.sets.length = 0;
});

const TO_COMPANION = [{ type: 'socks', host: '127.0.0.1', port: 1080, proxyDNS: true }, null];
const REFUSED = [{ type: 'socks', host: '224.0.0.1', port: 1080, proxyDNS: true }, null];

describe('firefoxProxyControl', () => {
  it('sends pages to the companion with DNS at the proxy, and holds WebRTC strict while the path is up', async () => {
    const control = firefoxProxyControl();
    expect(await control.apply(INPUT)).toEqual({ ok: true });
    // No fallback after the companion (`null`): the browser's own proxy would be another way out.
    expect(route('http://example.org/')).toEqual(TO_COMPANION);
    expect(route('ws://127.0.0.1:8600/')).toEqual({ type: 'direct' });
    expect(fake.policy).toBe('proxy_only');

    await control.pathUp(false);
    expect(fake.policy).toBe('disable_non_proxied_udp');
    await control.pathUp(false);
    await control.pathUp(true);
    expect(fake.sets).toEqual(['proxy_only', 'disable_non_proxied_udp', 'proxy_only']);

    await control.clear();
    // Still listening (Firefox remembers only a listener added as the background starts), answering nothing.
    expect(fake.listeners.size).toBe(1);
    expect(route('http://example.org/')).toBeUndefined();
    expect(fake.policy).toBe('default');
  });

  it('listens from the start, and requests wait until it is told where they go', async () => {
    const control = firefoxProxyControl();
    expect(fake.listeners.size).toBe(1);
    const early = route('http://example.org/');
    expect(early).toBeInstanceOf(Promise);
    await control.apply(INPUT);
    expect(await early).toEqual(TO_COMPANION);
  });

  it('lets waiting requests go as the browser would send them once Protect is not wanted', async () => {
    const control = firefoxProxyControl();
    const early = route('http://example.org/');
    await control.clear();
    expect(await early).toBeUndefined();
  });

  it('blocks pages (never direct) but not the signaling server, with the looser policy, until a companion is up', async () => {
    fake.policy = 'proxy_only'; // Firefox kept it from before the restart.
    const control = firefoxProxyControl();
    const early = route('http://example.org/');
    await control.block({ signalingUrl: INPUT.signalingUrl, routeLoopback: false, bypassSites: [] });
    expect(await early).toEqual(REFUSED);
    expect(route('https://example.org/x')).toEqual(REFUSED);
    expect(route('ws://127.0.0.1:8600/')).toEqual({ type: 'direct' });
    expect(fake.policy).toBe('disable_non_proxied_udp');

    await control.apply(INPUT);
    expect(route('http://example.org/')).toEqual(TO_COMPANION);
    expect(fake.policy).toBe('disable_non_proxied_udp');
    await control.pathUp(true);
    expect(fake.policy).toBe('proxy_only');
  });

  it('applied while a path is being built, starts with the looser policy', async () => {
    const control = firefoxProxyControl();
    await control.pathUp(false);
    expect(fake.sets).toEqual([]);
    await control.apply(INPUT);
    expect(fake.policy).toBe('disable_non_proxied_udp');
  });

  it('refuses, and routes nothing, when another extension holds the WebRTC policy', async () => {
    fake.levelOfControl = 'controlled_by_other_extensions';
    const control = firefoxProxyControl();
    expect(await control.apply(INPUT)).toMatchObject({ ok: false, code: 'webrtc-policy-not-controllable' });
    expect(route('http://example.org/')).toBeUndefined();
    expect(fake.sets).toEqual([]);
  });

  it('keeps pages blocked when the policy cannot be had once they are', async () => {
    const control = firefoxProxyControl();
    await control.block({ signalingUrl: INPUT.signalingUrl, routeLoopback: false, bypassSites: [] });
    fake.levelOfControl = 'controlled_by_other_extensions';
    expect(await control.apply(INPUT)).toMatchObject({ ok: false });
    expect(route('http://example.org/')).toEqual(REFUSED);
  });
});
