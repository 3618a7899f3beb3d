import { describe, expect, it } from 'vitest';
import {
  bytesEqual,
  concatBytes,
  fromBase64Url,
  fromUtf8,
  randomBytes,
  toBase64Url,
  utf8,
} from '../src/bytes.js';

/** Standard base64 turned into base64url without padding, as an independent reference. */
function reference(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

describe('base64url', () => {
  it('matches RFC 4648 test vectors (without padding)', () => {
    const vectors: [string, string][] = [
      ['', ''],
      ['f', 'Zg'],
      ['fo', 'Zm8'],
      ['foo', 'Zm9v'],
      ['foob', 'Zm9vYg'],
      ['fooba', 'Zm9vYmE'],
      ['foobar', 'Zm9vYmFy'],
    ];
    for (const [text, encoded] of vectors) {
      expect(toBase64Url(utf8(text))).toBe(encoded);
      expect(fromBase64Url(encoded)).toEqual(utf8(text));
    }
  });

  it('uses the URL-safe alphabet', () => {
    const bytes = Uint8Array.of(0xfb, 0xff, 0xbf);
    expect(toBase64Url(bytes)).toBe('-_-_');
    expect(fromBase64Url('-_-_')).toEqual(bytes);
  });

  it('round-trips every length from 0 to 70 bytes and agrees with the platform encoder', () => {
    for (let length = 0; length <= 70; length++) {
      const bytes = randomBytes(length);
      const encoded = toBase64Url(bytes);
      expect(encoded).toBe(reference(bytes));
      expect(encoded).toMatch(/^[A-Za-z0-9_-]*$/);
      expect(fromBase64Url(encoded)).toEqual(bytes);
    }
  });

  it('round-trips a 32-byte key as 43 characters', () => {
    const key = randomBytes(32);
    const text = toBase64Url(key);
    expect(text).toHaveLength(43);
    expect(fromBase64Url(text)).toEqual(key);
  });

  it.each(['Zm9v+', 'Zm9v/', 'Zm 9v', 'Zm9v\n', 'Zm9v!', 'Zm9vé', '\u0000AAA', 'Zm8.'])(
    'rejects a character outside the alphabet in %j',
    (text) => {
      expect(fromBase64Url(text)).toBeUndefined();
    },
  );

  it.each(['Zg==', 'Zm8=', 'Zg=', 'Zm9v=', '===='])('rejects padding in %j', (text) => {
    expect(fromBase64Url(text)).toBeUndefined();
  });

  it.each(['A', 'Zm9vY', 'AAAAA'])('rejects the impossible length of %j', (text) => {
    expect(fromBase64Url(text)).toBeUndefined();
  });

  it('rejects non-canonical trailing bits so one value has one spelling', () => {
    // 'Zg' is the canonical spelling of "f"; 'Zh'…'Zv' set some of the 4 unused low bits.
    expect(fromBase64Url('Zg')).toEqual(utf8('f'));
    for (const text of ['Zh', 'Zi', 'Zj', 'Zk', 'Zl', 'Zm', 'Zn', 'Zo', 'Zp', 'Zv']) {
      expect(fromBase64Url(text), text).toBeUndefined();
    }
    // Two unused bits after two bytes: 'Zm8' is canonical, 'Zm9'/'Zm-'/'Zm_' are not.
    expect(fromBase64Url('Zm8')).toEqual(utf8('fo'));
    for (const text of ['Zm9', 'Zm-', 'Zm_']) expect(fromBase64Url(text), text).toBeUndefined();
    // A 32-byte key: the last of 43 characters carries 2 unused bits.
    const key = new Uint8Array(32);
    const canonical = toBase64Url(key);
    expect(canonical.endsWith('A')).toBe(true);
    expect(fromBase64Url(`${canonical.slice(0, -1)}B`)).toBeUndefined();
  });

  it('decodes long inputs correctly (no accumulator overflow)', () => {
    const bytes = randomBytes(4096);
    expect(fromBase64Url(toBase64Url(bytes))).toEqual(bytes);
  });
});

describe('utf8', () => {
  it('round-trips text including astral characters', () => {
    for (const text of ['', 'example.com', 'grüße', '日本語', '🦊 fox', '\u0000nul']) {
      expect(fromUtf8(utf8(text))).toBe(text);
    }
  });

  it.each([
    ['a lone continuation byte', [0x80]],
    ['an invalid byte', [0xff]],
    ['an overlong "/"', [0xc0, 0xaf]],
    ['an overlong NUL', [0xe0, 0x80, 0x80]],
    ['a truncated sequence', [0xe2, 0x82]],
    ['a truncated sequence at the end', [0x61, 0xf0, 0x9f, 0xa6]],
    ['an encoded surrogate', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ])('returns undefined for %s instead of replacement characters', (_what, bytes) => {
    expect(fromUtf8(Uint8Array.from(bytes))).toBeUndefined();
  });

  // Bug (see report: "bytes.ts: fromUtf8 drops a leading BOM"): TextDecoder strips U+FEFF at the start unless
  // ignoreBOM is set, so two different byte strings decode to the same text.
  it('keeps a leading byte order mark rather than dropping it silently', () => {
    expect(fromUtf8(Uint8Array.of(0xef, 0xbb, 0xbf, 0x61))).toBe('\ufeffa');
  });
});

describe('byte helpers', () => {
  it('concatenates and compares', () => {
    const joined = concatBytes(Uint8Array.of(1, 2), new Uint8Array(0), Uint8Array.of(3));
    expect(joined).toEqual(Uint8Array.of(1, 2, 3));
    expect(bytesEqual(joined, Uint8Array.of(1, 2, 3))).toBe(true);
    expect(bytesEqual(joined, Uint8Array.of(1, 2, 4))).toBe(false);
    expect(bytesEqual(joined, Uint8Array.of(1, 2))).toBe(false);
    expect(bytesEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  });

  it('respects subarray offsets', () => {
    const buffer = Uint8Array.of(9, 9, 1, 2, 3, 9);
    expect(concatBytes(buffer.subarray(2, 5))).toEqual(Uint8Array.of(1, 2, 3));
    expect(bytesEqual(buffer.subarray(2, 5), Uint8Array.of(1, 2, 3))).toBe(true);
  });
});
