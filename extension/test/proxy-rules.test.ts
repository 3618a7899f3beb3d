import { describe, expect, it } from 'vitest';
import {
  bypassList,
  chromeProxyConfig,
  firefoxShouldBypass,
  signalingHostPort,
  siteMatches,
} from '../lib/proxy-rules';

describe('proxy rules', () => {
  it('names the signaling server with its default port', () => {
    expect(signalingHostPort('wss://signal.example.org/path')).toBe('signal.example.org:443');
    expect(signalingHostPort('ws://signal.example.org')).toBe('signal.example.org:80');
    expect(signalingHostPort('ws://127.0.0.1:8600/')).toBe('127.0.0.1:8600');
    expect(signalingHostPort('ws://[::1]:9000')).toBe('[::1]:9000');
  });

  it('bypasses the signaling server and the companion data port, and loopback only when asked', () => {
    const base = { signalingUrl: 'ws://127.0.0.1:8600', dataPort: 4000, bypassSites: [] };
    expect(bypassList({ ...base, routeLoopback: false })).toEqual(['127.0.0.1:8600', '127.0.0.1:4000']);
    // The data port after `<-loopback>` (later rules win): a restarted companion's is dialled with the proxy set.
    expect(bypassList({ ...base, routeLoopback: true })).toEqual([
      '127.0.0.1:8600',
      '<-loopback>',
      '127.0.0.1:4000',
    ]);
    // Later rules win in Chrome: a user's bypass sites come after `<-loopback>`, which would override them.
    expect(bypassList({ ...base, routeLoopback: true, bypassSites: ['127.0.0.2'] }).slice(-3)).toEqual([
      '<-loopback>',
      '127.0.0.1:4000',
      '127.0.0.2',
    ]);
  });

  it('sends everything else to the SOCKS5 port', () => {
    const config = chromeProxyConfig({
      socksPort: 1080,
      dataPort: 4000,
      signalingUrl: 'wss://s.example',
      routeLoopback: false,
      bypassSites: ['bank.example', '*.intranet.example'],
    });
    expect(config).toEqual({
      mode: 'fixed_servers',
      rules: {
        singleProxy: { scheme: 'socks5', host: '127.0.0.1', port: 1080 },
        bypassList: ['s.example:443', '127.0.0.1:4000', 'bank.example', '*.intranet.example'],
      },
    });
  });

  it('decides the same way per request for Firefox', () => {
    const input = {
      signalingUrl: 'wss://s.example',
      dataPort: 4000,
      routeLoopback: false,
      bypassSites: ['bank.example', '*.intranet.example'],
    };
    expect(firefoxShouldBypass('https://s.example/x', input)).toBe(true);
    expect(firefoxShouldBypass('ws://127.0.0.1:4000/', input)).toBe(true);
    expect(firefoxShouldBypass('http://127.0.0.1:5000/', input)).toBe(true);
    expect(firefoxShouldBypass('http://127.0.0.1:5000/', { ...input, routeLoopback: true })).toBe(false);
    expect(firefoxShouldBypass('https://example.org/', input)).toBe(false);
    expect(firefoxShouldBypass('https://s.example:8443/', input)).toBe(false);
    expect(firefoxShouldBypass('https://bank.example/login', input)).toBe(true);
    expect(firefoxShouldBypass('https://www.bank.example/', input)).toBe(false);
    expect(firefoxShouldBypass('https://a.intranet.example/', input)).toBe(true);
    expect(firefoxShouldBypass('https://intranet.example/', input)).toBe(false);
    // Fails closed: what cannot be parsed goes through the tunnel, never around it.
    expect(firefoxShouldBypass('not a url', input)).toBe(false);
  });

  it('matches sites the way Chrome does', () => {
    expect(siteMatches('bank.example', 'BANK.example.')).toBe(true);
    expect(siteMatches('bank.example', 'evilbank.example')).toBe(false);
    expect(siteMatches('*.bank.example', 'evil-bank.example')).toBe(false);
    expect(siteMatches('*.bank.example', 'a.b.bank.example')).toBe(true);
  });
});
