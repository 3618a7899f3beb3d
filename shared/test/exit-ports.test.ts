import { describe, expect, it } from 'vitest';
import { DEFAULT_DENIED_PORTS, ExitPolicy, parsePortRange } from '../src/exit/exit-policy.js';
import { MAX_POLICY_LENGTH } from '../src/signaling/messages.js';

describe('exit port policy', () => {
  it('denies the documented default set and allows their neighbours', () => {
    const policy = new ExitPolicy();
    for (const [first, last] of DEFAULT_DENIED_PORTS) {
      for (const port of [first, last]) expect(policy.checkPort(port).allowed, String(port)).toBe(false);
      if (first > 1) expect(policy.checkPort(first - 1).allowed).toBe(first - 1 === 25 ? false : true);
      if (last < 65535) expect(policy.checkPort(last + 1).allowed).toBe(true);
    }
    expect(policy.checkPort(445)).toEqual({
      allowed: false,
      reason: "port 445 is denied by this exit's port policy",
    });
    for (const port of [80, 443, 8080, 8443, 3000, 5222, 6880, 7000]) {
      expect(policy.checkPort(port)).toEqual({ allowed: true });
    }
  });

  it('--allow-port opens a default-denied range exactly; --deny-port closes one', () => {
    const policy = new ExitPolicy({ allowPorts: ['6881-6999', '445'], denyPorts: ['8000-8080', '22'] });
    expect(policy.checkPort(6881).allowed).toBe(true);
    expect(policy.checkPort(6999).allowed).toBe(true);
    expect(policy.checkPort(445).allowed).toBe(true);
    expect(policy.checkPort(139).allowed).toBe(false);
    expect(policy.checkPort(22).allowed).toBe(false);
    expect(policy.checkPort(8000).allowed).toBe(false);
    expect(policy.checkPort(8080).allowed).toBe(false);
    expect(policy.checkPort(8081).allowed).toBe(true);
  });

  it.each([['25'], ['20-30'], ['1-65535']])('never lets --allow-port %s open port 25', (spec) => {
    expect(() => new ExitPolicy({ allowPorts: [spec] })).toThrow(/port 25 is never allowed/);
  });

  it.each(['0', '65536', '80-', '-80', '90-80', '0x50', '80 ', '1e3', '', '08'])(
    'rejects the port spec %j',
    (spec) => {
      expect(parsePortRange(spec)).toBeUndefined();
      expect(() => new ExitPolicy({ denyPorts: [spec] })).toThrow(/--deny-port/);
    },
  );

  it('summarises the port policy, and stays within what the directory accepts', () => {
    expect(new ExitPolicy().summary()).toBe(
      'default-deny local and private ranges; ports 1-65535 except 25, 119, 135-139, 445, 563, 1214, ' +
        '4661-4666, 6346-6429, 6699, 6881-6999',
    );
    const many = Array.from({ length: 80 }, (_, i) => `203.0.${i}.0/24`);
    const ports = Array.from({ length: 60 }, (_, i) => String(10_000 + 2 * i));
    const summary = new ExitPolicy({ allowDestinations: many, denyPorts: ports }).summary();
    expect(summary.length).toBeLessThanOrEqual(MAX_POLICY_LENGTH);
    expect(summary).toContain('operator allows 80 ranges');
  });
});
