/** The signaling codec (messages.ts) and its ids (ids.ts): what both ends accept, and with which error code. */
import { x25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { fromBase64Url, toBase64Url } from '../src/bytes.js';
import { encodeExitKey, isExitKey, randomId } from '../src/signaling/ids.js';
import { parsePeerMessage, parseServerMessage } from '../src/signaling/messages.js';

/** A real X25519 public key, as an exit announces it. */
function newExitKey(): string {
  return encodeExitKey(x25519.getPublicKey(x25519.utils.randomSecretKey()));
}

describe('ids', () => {
  it('round-trips base64url and matches Node', () => {
    for (let len = 0; len < 40; len++) {
      const bytes = new Uint8Array(len).map((_, i) => (i * 37 + len) & 0xff);
      const text = toBase64Url(bytes);
      expect(text).toBe(Buffer.from(bytes).toString('base64url'));
      expect(fromBase64Url(text)).toEqual(bytes);
    }
  });

  it('accepts only canonical 32-byte exit keys', () => {
    const key = newExitKey();
    expect(isExitKey(key)).toBe(true);
    expect(isExitKey(key + '=')).toBe(false);
    expect(isExitKey(key.slice(0, 42))).toBe(false);
    expect(isExitKey(key.slice(0, 42) + '+')).toBe(false);
    // The last character carries 2 unused bits; a non-zero one is a second spelling of some key.
    expect(isExitKey(key.slice(0, 42) + 'B')).toBe(false);
    expect(isExitKey(key.slice(0, 42) + 'E')).toBe(true);
  });

  it('makes 22-character random ids', () => {
    const ids = new Set(Array.from({ length: 100 }, randomId));
    expect(ids.size).toBe(100);
    for (const i of ids) expect(i).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });
});

describe('codec', () => {
  it('parses every peer message', () => {
    const exitKey = newExitKey();
    const samples = [
      { type: 'hello', v: 1, role: 'client' },
      { type: 'hello', v: 1, role: 'relay', capacity: 10 },
      { type: 'hello', v: 1, role: 'exit', exitKey, capacity: 1000, policy: 'web' },
      { type: 'path-request', requestId: 'r', mode: 'two-hop' },
      { type: 'path-request', requestId: 'r', mode: 'direct', exitKey },
      { type: 'connect-exit', requestId: 'r', exitKey },
      { type: 'signal', linkId: randomId(), data: { type: 'offer', sdp: 'v=0' } },
      { type: 'link-closed', linkId: randomId() },
      { type: 'load', load: 0 },
    ];
    for (const s of samples) expect(parsePeerMessage(JSON.stringify(s))).toEqual({ ok: true, msg: s });
  });

  it('refuses bad peer messages with the right code', () => {
    const bad: [unknown, string][] = [
      ['{', 'malformed'],
      ['null', 'malformed'],
      [JSON.stringify({ type: 'hello', v: 3 }), 'unsupported-version'],
      [JSON.stringify({ type: 'hello', role: 'client' }), 'unsupported-version'],
      [JSON.stringify({ type: 'hello', v: 1, role: 'client', capacity: 3 }), 'malformed'],
      [JSON.stringify({ type: 'hello', v: 1, role: 'relay', capacity: 1001 }), 'malformed'],
      [
        JSON.stringify({ type: 'hello', v: 1, role: 'exit', exitKey: newExitKey(), policy: 'p'.repeat(513) }),
        'malformed',
      ],
      [JSON.stringify({ type: 'hello', v: 1, role: 'god' }), 'malformed'],
      [JSON.stringify({ type: 'load', load: 1.5 }), 'malformed'],
      [JSON.stringify({ type: 'signal', linkId: 'short', data: {} }), 'malformed'],
      [JSON.stringify({ type: 'signal', linkId: randomId(), data: 'str' }), 'malformed'],
      ['"' + 'x'.repeat(64 * 1024) + '"', 'too-large'],
      ['"' + 'é'.repeat(33 * 1024) + '"', 'too-large'],
    ];
    for (const [text, code] of bad) {
      const result = parsePeerMessage(text as string);
      expect(result.ok, String(text).slice(0, 80)).toBe(false);
      if (!result.ok) expect(result.code, String(text).slice(0, 80)).toBe(code);
    }
  });

  it('survives deeply nested input', () => {
    const deep =
      '{"type":"signal","linkId":"AAAAAAAAAAAAAAAAAAAAAA","data":{"a":' +
      '['.repeat(20000) +
      ']'.repeat(20000) +
      '}}';
    expect(parsePeerMessage(deep).ok).toBe(false);
  });

  it('parses server messages and rejects unknown error codes', () => {
    const msg = { type: 'error', code: 'no-exit-available', message: 'none', requestId: 'r' };
    expect(parseServerMessage(JSON.stringify(msg))).toEqual({ ok: true, msg });
    expect(parseServerMessage(JSON.stringify({ ...msg, code: 'boom' })).ok).toBe(false);
    expect(parseServerMessage(JSON.stringify({ type: 'welcome', v: 1, peerId: randomId() })).ok).toBe(true);
  });
});

describe('exits that serve torrents', () => {
  const exitKey = newExitKey();
  const peerId = 'AAAAAAAAAAAAAAAAAAAAAA';

  it('an exit may say it serves torrents; no other role may say anything about it', () => {
    for (const torrents of [true, false]) {
      const hello = { type: 'hello', v: 1, role: 'exit', exitKey, torrents };
      expect(parsePeerMessage(JSON.stringify(hello))).toEqual({ ok: true, msg: hello });
    }
    for (const hello of [
      { type: 'hello', v: 1, role: 'client', torrents: false },
      { type: 'hello', v: 1, role: 'relay', capacity: 2, torrents: true },
      { type: 'hello', v: 1, role: 'exit', exitKey, torrents: 'yes' },
    ]) {
      expect(parsePeerMessage(JSON.stringify(hello))).toMatchObject({ ok: false, code: 'malformed' });
    }
  });

  it('an exit may say it answers PING; no other role may, and a path or link names it', () => {
    const hello = { type: 'hello', v: 1, role: 'exit', exitKey, pings: true };
    expect(parsePeerMessage(JSON.stringify(hello))).toEqual({ ok: true, msg: hello });
    for (const bad of [
      { type: 'hello', v: 1, role: 'client', pings: true },
      { type: 'hello', v: 1, role: 'relay', capacity: 2, pings: false },
      { type: 'hello', v: 1, role: 'exit', exitKey, pings: 1 },
    ]) {
      expect(parsePeerMessage(JSON.stringify(bad))).toMatchObject({ ok: false, code: 'malformed' });
    }
    const link = { type: 'link', linkId: peerId, initiator: false, peer: { peerId, role: 'client' } };
    const withExit = { ...link, exit: { peerId, exitKey, pings: true } };
    expect(parseServerMessage(JSON.stringify(withExit))).toEqual({ ok: true, msg: withExit });
    expect(
      parseServerMessage(JSON.stringify({ ...link, exit: { peerId, exitKey, pings: 'yes' } })),
    ).toMatchObject({ ok: false });
  });

  it('link-resume claims 1 to 256 valid link ids', () => {
    const id = randomId();
    const claim = { type: 'link-resume', linkIds: [id] };
    expect(parsePeerMessage(JSON.stringify(claim))).toEqual({ ok: true, msg: claim });
    const full = { type: 'link-resume', linkIds: Array.from({ length: 256 }, () => randomId()) };
    expect(parsePeerMessage(JSON.stringify(full))).toEqual({ ok: true, msg: full });
    for (const linkIds of [
      [],
      Array.from({ length: 257 }, () => randomId()),
      ['short'],
      [id, 'not/base64url/at/all!'],
      [42],
      id,
      null,
    ])
      expect(parsePeerMessage(JSON.stringify({ type: 'link-resume', linkIds }))).toMatchObject({
        ok: false,
        code: 'malformed',
      });
  });

  it('a path request may need torrents, and nothing else yet', () => {
    const request = { type: 'path-request', requestId: 'r', mode: 'direct', needs: 'torrent' };
    expect(parsePeerMessage(JSON.stringify(request))).toEqual({ ok: true, msg: request });
    expect(parsePeerMessage(JSON.stringify({ ...request, needs: 'video' }))).toMatchObject({
      ok: false,
      code: 'malformed',
      requestId: 'r',
    });
  });

  it('a path names whether its exit serves torrents, and one without the field (an older server) parses', () => {
    const path = {
      type: 'path',
      requestId: 'r',
      linkId: peerId,
      hop: { peerId, role: 'exit' },
      exit: { peerId, exitKey, torrents: true },
    };
    expect(parseServerMessage(JSON.stringify(path))).toEqual({ ok: true, msg: path });
    const older = { ...path, exit: { peerId, exitKey } };
    expect(parseServerMessage(JSON.stringify(older))).toEqual({ ok: true, msg: older });
    expect(
      parseServerMessage(JSON.stringify({ ...path, exit: { ...path.exit, torrents: 1 } })),
    ).toMatchObject({
      ok: false,
      code: 'malformed',
    });
  });
});
