import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  encodePairingCode,
  MAX_DATA_PORT_SECRET_LENGTH,
  MAX_PAIRING_CODE_LENGTH,
} from '@underpass/shared/data-port';
import { decodePairingCode } from '../lib/pairing-code';

/** Made the way the companion makes them (companion/src/pairing.ts), with Node's own base64url. */
const encode = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
const SECRET = randomBytes(32).toString('base64url');
const GOOD = { dataPort: 41234, socksPort: 1080, secret: SECRET };

function reason(code: string): string {
  const result = decodePairingCode(code);
  if (result.ok) throw new Error(`expected ${code} to be refused`);
  return result.reason;
}

describe('decodePairingCode', () => {
  it('reads a code in the companion format, with surrounding whitespace', () => {
    expect(decodePairingCode(`  ${encode(GOOD)}\n`)).toEqual({ ok: true, pairing: GOOD });
  });

  it('reads what the companion itself encodes', () => {
    expect(decodePairingCode(encodePairingCode(GOOD))).toEqual({ ok: true, pairing: GOOD });
    expect(decodePairingCode(encodePairingCode(GOOD))).toEqual({ ok: true, pairing: GOOD });
  });

  it('accepts what PROTOCOL.md allows (a 512-character secret, a code of 2048 characters) and refuses one past it', () => {
    expect(MAX_DATA_PORT_SECRET_LENGTH).toBe(512);
    expect(MAX_PAIRING_CODE_LENGTH).toBe(2048);
    const longest = { ...GOOD, secret: 'S'.repeat(512) };
    expect(decodePairingCode(encodePairingCode(longest))).toEqual({ ok: true, pairing: longest });
    expect(reason(encode({ ...GOOD, secret: 'S'.repeat(513) }))).toContain('secret');

    // A code is padded to its limit with a field the parser ignores: 3 JSON bytes are 4 base64url characters.
    const padded = (codeLength: number) => {
      const base = JSON.stringify({ ...longest, note: '' });
      const code = encode({ ...longest, note: 'n'.repeat((codeLength * 3) / 4 - base.length) });
      expect(code.length).toBe(codeLength);
      return code;
    };
    expect(decodePairingCode(padded(MAX_PAIRING_CODE_LENGTH))).toEqual({ ok: true, pairing: longest });
    expect(reason(`${padded(MAX_PAIRING_CODE_LENGTH)}AAAA`)).toContain('too long');
    expect(reason('A'.repeat(MAX_PAIRING_CODE_LENGTH + 1))).toContain('too long');
  });

  it('ignores fields it does not know, like the companion does', () => {
    expect(decodePairingCode(encode({ ...GOOD, note: 'x' }))).toEqual({ ok: true, pairing: GOOD });
  });

  it('reads the secret of every length it accepts, whatever the base64url padding', () => {
    for (const length of [16, 17, 18, 43, 256, 512]) {
      const pairing = { ...GOOD, secret: 'A'.repeat(length) };
      expect(decodePairingCode(encode(pairing))).toEqual({ ok: true, pairing });
    }
  });

  it('refuses an empty paste and says what to paste', () => {
    expect(reason('   ')).toContain('underpass-companion serve');
  });

  it('refuses text that is not base64url, or too long', () => {
    expect(reason('not a code')).toContain('not a pairing code');
    expect(reason(`${encode(GOOD).slice(0, 20)}+/=`)).toContain('not a pairing code');
    expect(reason('A'.repeat(MAX_PAIRING_CODE_LENGTH + 1))).toContain('too long');
  });

  it('refuses base64url that is not a JSON object', () => {
    for (const value of [[1, 2], 'string', 42, null])
      expect(reason(encode(value))).toContain('does not decode');
    expect(reason(Buffer.from('{"dataPort":', 'utf8').toString('base64url'))).toContain('does not decode');
    expect(reason(Buffer.from([0xff, 0xfe, 0x7b, 0x7d]).toString('base64url'))).toContain('does not decode');
    // A truncated code whose length leaves a lone character is refused, not padded into something else.
    expect(reason('AAAAA')).toContain('does not decode');
  });

  it('refuses ports outside 1–65535 and ports that are not integers', () => {
    for (const dataPort of [0, 65536, -1, 80.5, '8080', undefined]) {
      expect(reason(encode({ ...GOOD, dataPort }))).toContain('dataPort');
    }
    expect(reason(encode({ ...GOOD, socksPort: 70_000 }))).toContain('socksPort');
    expect(reason(encode({ ...GOOD, socksPort: GOOD.dataPort }))).toContain('same port');
  });

  it('refuses a secret that is missing, too short, too long or not base64url', () => {
    for (const secret of [
      undefined,
      'short',
      'A'.repeat(MAX_DATA_PORT_SECRET_LENGTH + 1),
      `${'A'.repeat(20)} ${'A'.repeat(20)}`,
      42,
    ]) {
      expect(reason(encode({ ...GOOD, secret }))).toContain('secret');
    }
  });
});
