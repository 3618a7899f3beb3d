import { describe, expect, it } from 'vitest';
import { DEFAULT_HOST, DEFAULT_PORT, parseConfig } from '../src/config.js';
import { resolveLimits } from '../src/limits.js';

describe('parseConfig', () => {
  it('uses defaults', () => {
    expect(parseConfig([], {})).toEqual({
      kind: 'run',
      config: { port: DEFAULT_PORT, host: DEFAULT_HOST, logLevel: 'info', limits: {} },
    });
  });

  it('takes flags over environment', () => {
    const env = {
      UNDERPASS_SIGNALING_PORT: '9000',
      UNDERPASS_SIGNALING_HOST: '0.0.0.0',
      UNDERPASS_SIGNALING_MAX_PEERS: '5',
    };
    expect(parseConfig([], env)).toMatchObject({
      config: { port: 9000, host: '0.0.0.0', limits: { maxPeers: 5 } },
    });
    expect(parseConfig(['--port', '0', '--max-links-per-client', '3'], env)).toMatchObject({
      config: { port: 0, host: '0.0.0.0', limits: { maxPeers: 5, maxLinksPerClient: 3 } },
    });
  });

  it('reports bad input as errors', () => {
    expect(parseConfig(['--port', '70000'], {}).kind).toBe('error');
    expect(parseConfig(['--port', '-1'], {}).kind).toBe('error');
    expect(parseConfig(['--bogus'], {}).kind).toBe('error');
    expect(parseConfig(['extra'], {}).kind).toBe('error');
    expect(parseConfig(['--log-level', 'loud'], {}).kind).toBe('error');
    expect(parseConfig([], { UNDERPASS_SIGNALING_PORT: '12ab' }).kind).toBe('error');
    expect(parseConfig(['--help'], {}).kind).toBe('help');
  });
});

describe('parseConfig: limits, redis and logging', () => {
  it('reads every limit from its flag or environment variable', () => {
    expect(
      parseConfig(['--idle-timeout-ms', '5000', '--max-connections-per-address', '4'], {
        UNDERPASS_SIGNALING_MATCH_WAIT_MS: '250',
        UNDERPASS_SIGNALING_MESSAGES_PER_SECOND: '10',
      }),
    ).toMatchObject({
      config: {
        limits: { idleTimeoutMs: 5000, maxConnectionsPerAddress: 4, matchWaitMs: 250, messagesPerSecond: 10 },
      },
    });
    expect(parseConfig(['--max-message-bytes', '100000'], {}).kind).toBe('error');
    expect(parseConfig(['--idle-timeout-ms', '0'], {}).kind).toBe('error');
  });

  it('refuses an idle timeout too short for a heartbeat (welcome asks for a third of it, at least 1 ms)', () => {
    for (const ms of ['1', '2', '999'])
      expect(parseConfig(['--idle-timeout-ms', ms], {})).toMatchObject({
        kind: 'error',
        message: expect.stringContaining('between 1000 and'),
      });
    expect(parseConfig(['--idle-timeout-ms', '1000'], {})).toMatchObject({
      config: { limits: { idleTimeoutMs: 1000 } },
    });
    expect(() => resolveLimits({ idleTimeoutMs: 2 })).toThrow(RangeError);
    expect(resolveLimits({ idleTimeoutMs: 1000 }).idleTimeoutMs).toBe(1000);
  });

  it('takes a match wait of 0 (no waiting) from flags, environment and options', () => {
    expect(parseConfig(['--match-wait-ms', '0'], {})).toMatchObject({
      config: { limits: { matchWaitMs: 0 } },
    });
    expect(parseConfig([], { UNDERPASS_SIGNALING_MATCH_WAIT_MS: '0' })).toMatchObject({
      config: { limits: { matchWaitMs: 0 } },
    });
    expect(resolveLimits({ matchWaitMs: 0 }).matchWaitMs).toBe(0);
    expect(() => resolveLimits({ matchWaitMs: -1 })).toThrow(RangeError);
    expect(() => resolveLimits({ maxPeers: 0 })).toThrow(RangeError);
  });

  it('names the environment variable, not the flag, when a bad value came from the environment', () => {
    expect(parseConfig([], { UNDERPASS_SIGNALING_PORT: 'abc' })).toEqual({
      kind: 'error',
      message: 'UNDERPASS_SIGNALING_PORT must be an integer, got "abc"',
    });
    expect(parseConfig([], { UNDERPASS_SIGNALING_MAX_PEERS: '0' })).toMatchObject({
      message: expect.stringMatching(/^UNDERPASS_SIGNALING_MAX_PEERS must be between 1 and/),
    });
    expect(parseConfig([], { UNDERPASS_SIGNALING_TRUSTED_PROXIES: 'proxy.example' })).toMatchObject({
      message: 'UNDERPASS_SIGNALING_TRUSTED_PROXIES: not an IP address or CIDR range: proxy.example',
    });
    expect(parseConfig(['--port', 'abc'], { UNDERPASS_SIGNALING_PORT: '1' })).toMatchObject({
      message: '--port must be an integer, got "abc"',
    });
  });

  it('takes trusted proxies from repeated flags or a comma-separated variable, and names a bad one', () => {
    expect(parseConfig(['--trusted-proxy', '10.0.0.0/8', '--trusted-proxy', '::1'], {})).toMatchObject({
      config: { trustedProxies: ['10.0.0.0/8', '::1'] },
    });
    expect(parseConfig([], { UNDERPASS_SIGNALING_TRUSTED_PROXIES: '10.0.0.1, 192.0.2.0/24' })).toMatchObject({
      config: { trustedProxies: ['10.0.0.1', '192.0.2.0/24'] },
    });
    expect(parseConfig(['--trusted-proxy', 'proxy.example'], {})).toEqual({
      kind: 'error',
      message: '--trusted-proxy: not an IP address or CIDR range: proxy.example',
    });
  });

  it('takes --redis, its expiry and --log-addresses', () => {
    expect(
      parseConfig(
        ['--redis', 'redis://127.0.0.1:6379/0', '--redis-expiry-ms', '3000', '--log-addresses'],
        {},
      ),
    ).toMatchObject({
      config: { redis: 'redis://127.0.0.1:6379/0', redisExpiryMs: 3000, logAddresses: true },
    });
    expect(
      parseConfig([], { UNDERPASS_SIGNALING_REDIS: 'rediss://h:1', UNDERPASS_SIGNALING_LOG_ADDRESSES: '1' }),
    ).toMatchObject({ config: { redis: 'rediss://h:1', logAddresses: true } });
    expect(parseConfig(['--redis', 'http://x'], {}).kind).toBe('error');
    expect(parseConfig(['--redis-expiry-ms', '10'], {}).kind).toBe('error');
  });
});
