import { describe, expect, it } from 'vitest';
import { DEFAULT_HOST, DEFAULT_PORT, parseConfig } from '../src/config.js';

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
