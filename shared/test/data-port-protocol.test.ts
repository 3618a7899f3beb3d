import { describe, expect, it } from 'vitest';
import {
  DataPortCloseCode,
  decodePairingCode,
  encodeDataPortHello,
  encodePairingCode,
  MAX_DATA_PORT_SECRET_LENGTH,
  MAX_PAIRING_CODE_LENGTH,
  MIN_DATA_PORT_SECRET_LENGTH,
  parseDataPortHello,
  type PairingCodeProblem,
} from '../src/data-port/protocol.js';

const SECRET = 'q2mB3n0ZrX_7cV-1kLpA9sDfGhJkLzXcVbNm1234567';
const GOOD = { dataPort: 41234, socksPort: 1080, secret: SECRET };
/** How the companion's first version made codes: Node's own base64url of the JSON. */
const nodeEncode = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

function problem(code: string): PairingCodeProblem {
  const checked = decodePairingCode(code);
  if (checked.ok) throw new Error(`expected ${code} to be refused`);
  return checked.problem;
}

describe('the data port protocol', () => {
  it('has the close codes PROTOCOL.md lists', () => {
    expect(DataPortCloseCode).toEqual({
      normal: 1000,
      goingAway: 1001,
      extensionError: 4000,
      protocol: 4400,
      unauthorized: 4401,
      replaced: 4409,
    });
  });

  it('round-trips the hello, and refuses anything else as one', () => {
    expect(parseDataPortHello(encodeDataPortHello(SECRET))).toEqual({ type: 'hello', secret: SECRET });
    expect(parseDataPortHello('{"type":"hello","secret":"x"}')).toEqual({ type: 'hello', secret: 'x' });
    for (const text of [
      'hello',
      '{"type":"hi","secret":"x"}',
      '{"type":"hello","secret":42}',
      '{"type":"hello","secret":""}',
      JSON.stringify({ type: 'hello', secret: 'x'.repeat(MAX_DATA_PORT_SECRET_LENGTH + 1) }),
    ]) {
      expect(parseDataPortHello(text)).toBeUndefined();
    }
  });

  it('encodes a pairing code exactly as Node’s base64url would, and decodes it back', () => {
    const code = encodePairingCode(GOOD);
    expect(code).toBe(nodeEncode(GOOD));
    expect(decodePairingCode(`  ${code}\n`)).toEqual({ ok: true, pairing: GOOD });
  });

  it('accepts secrets of 16 to 512 characters and codes of up to 2048', () => {
    expect([MIN_DATA_PORT_SECRET_LENGTH, MAX_DATA_PORT_SECRET_LENGTH, MAX_PAIRING_CODE_LENGTH]).toEqual([
      16, 512, 2048,
    ]);
    for (const length of [16, 512]) {
      const pairing = { ...GOOD, secret: 'A'.repeat(length) };
      expect(decodePairingCode(encodePairingCode(pairing))).toEqual({ ok: true, pairing });
    }
    for (const length of [15, 513])
      expect(problem(nodeEncode({ ...GOOD, secret: 'A'.repeat(length) }))).toBe('bad-secret');
    expect(problem('A'.repeat(MAX_PAIRING_CODE_LENGTH + 1))).toBe('too-long');
  });

  it('names the first problem of a bad code', () => {
    expect(problem(' ')).toBe('empty');
    expect(problem('not a code')).toBe('not-base64url');
    expect(problem(nodeEncode([1]))).toBe('not-json-object');
    expect(problem('AAAAA')).toBe('not-json-object');
    expect(problem(nodeEncode({ ...GOOD, dataPort: 0 }))).toBe('bad-data-port');
    expect(problem(nodeEncode({ ...GOOD, socksPort: 65536 }))).toBe('bad-socks-port');
    expect(problem(nodeEncode({ ...GOOD, secret: `${'A'.repeat(20)}+` }))).toBe('bad-secret');
    expect(problem(nodeEncode({ ...GOOD, socksPort: GOOD.dataPort }))).toBe('same-port');
  });
});
