import { describe, expect, it } from 'vitest';
import { concatBytes, toBase64Url, utf8, view } from '../src/bytes.js';
import { generateStaticKeyPair } from '../src/tunnel/noise.js';
import {
  CERTIFICATE_HEADER_BYTES,
  checkExitCertificate,
  CLOCK_SKEW_SECONDS,
  decodeCertificate,
  DEVELOPMENT_DIRECTORY,
  DEVELOPMENT_DIRECTORY_KEY_TEXT,
  directoryKeyId,
  encodeCertificateBody,
  encodeDirectoryKey,
  generateDirectoryKeyPair,
  issueCertificate,
  MAX_CERTIFICATE_BYTES,
  MAX_POLICY_CHARS,
  MAX_VALIDITY_SECONDS,
  parseDirectoryKeys,
  type CertificateRequest,
  type ExitTrust,
} from '../src/trust/index.js';

const NOW = 1_800_000_000; // seconds
const exitKey = generateStaticKeyPair().publicKey;
const directory = generateDirectoryKeyPair();
const request: CertificateRequest = {
  exitKey,
  policy: 'default-deny local and private ranges; ports 1-65535 except 25',
  torrents: true,
  issuedAt: NOW - 60,
  expiresAt: NOW + 30 * 86_400,
};
const trust: ExitTrust = { directoryKeys: [directory.publicKey], now: () => NOW * 1000 };
const check = (bytes: Uint8Array, t: Partial<ExitTrust> = {}, key = exitKey) =>
  checkExitCertificate(bytes, key, { ...trust, ...t });
const reasonOf = (bytes: Uint8Array, t: Partial<ExitTrust> = {}, key = exitKey) => {
  const result = check(bytes, t, key);
  return result.ok ? 'ok' : result.error.reason;
};

/** A certificate with a valid signature over whatever body it is given (to test the decoder's own checks). */
function signedBody(body: Uint8Array): Uint8Array {
  const good = issueCertificate(request, directory);
  const decoded = decodeCertificate(good);
  if (!decoded.ok) throw new Error(decoded.reason);
  return concatBytes(body, decoded.value.signature);
}

describe('exit certificate format', () => {
  it('round-trips every field, and the layout is the documented one', () => {
    const bytes = issueCertificate(request, directory);
    expect(bytes.length).toBe(CERTIFICATE_HEADER_BYTES + utf8(request.policy).length + 64);
    expect(bytes[0]).toBe(1);
    expect(bytes[1]).toBe(1); // torrents
    expect([...bytes.subarray(2, 34)]).toEqual([...exitKey]);
    expect([...bytes.subarray(34, 42)]).toEqual([...directoryKeyId(directory.publicKey)]);
    expect(Number(view(bytes).getBigUint64(42))).toBe(request.issuedAt);
    expect(Number(view(bytes).getBigUint64(50))).toBe(request.expiresAt);
    expect(view(bytes).getUint16(58)).toBe(utf8(request.policy).length);
    const decoded = decodeCertificate(bytes);
    expect(decoded.ok && decoded.value).toMatchObject({ ...request, exitKey });
    // Canonical: the decoded fields encode back to the very bytes that were signed.
    if (!decoded.ok) throw new Error('no');
    expect(encodeCertificateBody({ ...decoded.value, directoryKeyId: decoded.value.directoryKeyId })).toEqual(
      decoded.value.body,
    );
  });

  it('the decoder refuses every non-canonical or out-of-bounds form', () => {
    const good = issueCertificate(request, directory);
    const withByte = (offset: number, value: number) => {
      const bytes = good.slice();
      bytes[offset] = value;
      return bytes;
    };
    const withTime = (offset: number, value: bigint) => {
      const bytes = good.slice();
      view(bytes).setBigUint64(offset, value);
      return bytes;
    };
    const body = (policy: Uint8Array, declared = policy.length) => {
      const header = good.slice(0, CERTIFICATE_HEADER_BYTES);
      view(header).setUint16(58, declared);
      return signedBody(concatBytes(header, policy));
    };
    const cases: [string, Uint8Array, RegExp][] = [
      ['empty', new Uint8Array(0), /shorter/],
      ['truncated', good.subarray(0, good.length - 1), /length/],
      ['a trailing byte', concatBytes(good, Uint8Array.of(0)), /length/],
      ['too long', new Uint8Array(MAX_CERTIFICATE_BYTES + 1), /longer/],
      ['version 2', withByte(0, 2), /version/],
      ['version 0', withByte(0, 0), /version/],
      ['an unknown flag', withByte(1, 0x03), /flags/],
      ['an all-zero exit key', concatBytes(good.slice(0, 2), new Uint8Array(32), good.slice(34)), /zeros/],
      ['issued after it expires', withTime(42, BigInt(request.expiresAt)), /expires before/],
      ['valid too long', withTime(50, BigInt(request.issuedAt + MAX_VALIDITY_SECONDS + 1)), /longer than/],
      ['a time past 9999', withTime(50, 2n ** 63n), /9999/],
      ['an empty policy', body(new Uint8Array(0)), /empty|shorter/],
      ['a policy length past the end', body(utf8('abc'), 4), /length/],
      ['a policy that is not UTF-8', body(Uint8Array.of(0x61, 0xff, 0x62)), /UTF-8/],
      ['a policy with a line break', body(utf8('deny\nforged line')), /control/],
      ['a policy with an escape', body(utf8('deny\u001b[2J')), /control/],
      ['a policy over 512 characters', body(utf8('a'.repeat(MAX_POLICY_CHARS + 1))), /512/],
    ];
    for (const [name, bytes, reason] of cases) {
      const decoded = decodeCertificate(bytes);
      expect(decoded.ok, name).toBe(false);
      if (!decoded.ok) expect(decoded.reason, name).toMatch(reason);
      // The client's check turns each into a typed refusal.
      if (bytes.length > 0) expect(reasonOf(bytes), name).toBe('malformed-certificate');
    }
  });

  it('the encoder refuses fields the decoder would refuse', () => {
    const bad: Partial<CertificateRequest>[] = [
      { exitKey: new Uint8Array(31) },
      { policy: '' },
      { policy: 'x\u0000' },
      { policy: '\ud800' },
      { issuedAt: 1.5 },
      { issuedAt: -1 },
      { expiresAt: request.issuedAt },
      { expiresAt: request.issuedAt + MAX_VALIDITY_SECONDS + 1 },
    ];
    for (const fields of bad)
      expect(() => issueCertificate({ ...request, ...fields }, directory)).toThrow(RangeError);
  });
});

describe("the client's check of an exit (untrusted-exit reasons)", () => {
  const good = issueCertificate(request, directory);

  it('accepts a valid certificate for the exit it talks to', () => {
    const result = check(good, { needs: 'torrent' });
    expect(result.ok).toBe(true);
  });

  it('refuses each way an exit can fail to be trusted', () => {
    const flipped = (offset: number) => {
      const bytes = good.slice();
      bytes[offset]! ^= 0x01;
      return bytes;
    };
    const other = generateDirectoryKeyPair();
    const at = (issuedAt: number, expiresAt: number) =>
      issueCertificate({ ...request, issuedAt, expiresAt }, directory);
    expect(reasonOf(good, { directoryKeys: [] })).toBe('no-directory-keys');
    expect(reasonOf(new Uint8Array(0))).toBe('no-certificate');
    expect(reasonOf(good.subarray(0, 20))).toBe('malformed-certificate');
    expect(reasonOf(issueCertificate(request, other))).toBe('unknown-directory-key');
    expect(reasonOf(flipped(good.length - 1))).toBe('bad-signature'); // the signature
    expect(reasonOf(flipped(CERTIFICATE_HEADER_BYTES))).toBe('bad-signature'); // the policy text
    expect(reasonOf(flipped(60 - 3))).toBe('bad-signature'); // expires-at
    expect(reasonOf(flipped(1))).toBe('bad-signature'); // torrents flag
    // With several keys configured, the one whose id the certificate names is the one that verifies.
    expect(reasonOf(good, { directoryKeys: [other.publicKey, directory.publicKey] })).toBe('ok');
    expect(reasonOf(at(NOW - 100, NOW))).toBe('expired');
    expect(reasonOf(at(NOW - 100, NOW - 1))).toBe('expired');
    expect(reasonOf(at(NOW + CLOCK_SKEW_SECONDS + 1, NOW + 86_400))).toBe('not-yet-valid');
    expect(reasonOf(at(NOW + CLOCK_SKEW_SECONDS, NOW + 86_400))).toBe('ok'); // within the clock skew
    expect(reasonOf(good, {}, generateStaticKeyPair().publicKey)).toBe('key-mismatch');
    const noTorrents = issueCertificate({ ...request, torrents: false }, directory);
    expect(reasonOf(noTorrents, { needs: 'torrent' })).toBe('no-torrents');
    expect(reasonOf(noTorrents)).toBe('ok');
  });

  it('a signature over the same body without the signing context is refused', async () => {
    const { ed25519 } = await import('@noble/curves/ed25519.js');
    const decoded = decodeCertificate(good);
    if (!decoded.ok) throw new Error(decoded.reason);
    const bare = concatBytes(decoded.value.body, ed25519.sign(decoded.value.body, directory.secretKey));
    expect(reasonOf(bare)).toBe('bad-signature');
  });

  it('the error is a session error with the wire code and the reason in words', () => {
    const result = check(new Uint8Array(0));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('untrusted-exit');
    expect(result.error.message).toMatch(/not certified by a directory key you trust \(no-certificate/);
  });
});

describe('directory keys as text', () => {
  it('parses lists separated by spaces, commas and lines, dropping duplicates', () => {
    const a = encodeDirectoryKey(directory.publicKey);
    const b = DEVELOPMENT_DIRECTORY_KEY_TEXT;
    const parsed = parseDirectoryKeys(`${a}\n${b}, ${a}`);
    expect(parsed.ok && parsed.keys.map(toBase64Url)).toEqual([a, b]);
    expect(encodeDirectoryKey(DEVELOPMENT_DIRECTORY.publicKey)).toBe(b);
  });

  it('refuses what is not a key', () => {
    const a = encodeDirectoryKey(directory.publicKey);
    for (const text of [a.slice(1), `${a}A`, a.replace(/.$/, '='), 'x'.repeat(43)]) {
      expect(parseDirectoryKeys(text).ok, text).toBe(false);
    }
    const many = Array.from({ length: 17 }, () => encodeDirectoryKey(generateDirectoryKeyPair().publicKey));
    expect(parseDirectoryKeys(many.join(' '))).toMatchObject({ ok: false, reason: /more than 16/ });
  });
});
