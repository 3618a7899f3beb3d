import { describe, expect, it } from 'vitest';
import { Mux } from '../src/tunnel/mux.js';
import {
  decodeMuxFrame,
  encodeMuxFrame,
  MAX_DATA_PAYLOAD,
  MAX_TORRENT_FILE_INDICES,
  MAX_TORRENT_TRACKERS,
  MAX_TRACKER_URL_BYTES,
  validateRequest,
  type StreamRequest,
  type TorrentRequest,
} from '../src/tunnel/mux-frames.js';
import { STREAM_ERROR_CODES, type SessionError, type StreamError } from '../src/errors.js';

const INFO_HASH = '0123456789abcdef0123456789abcdef01234567';
const TORRENT: TorrentRequest = {
  kind: 'torrent',
  infoHash: INFO_HASH,
  trackers: ['udp://tracker.example:1337/announce', 'https://t.example/announce?k=v', 'wss://tr.example'],
  files: [3, 0, 7],
};

/** The OPEN payload of a torrent request, written by hand as PROTOCOL.md §4 lays it out. */
function torrentPayload(parts: {
  hash?: number[];
  trackers?: Uint8Array[];
  trackerCount?: number;
  files?: number[];
  fileCount?: number;
}): Uint8Array {
  const bytes: number[] = [2, ...(parts.hash ?? Array.from({ length: 20 }, (_, i) => i))];
  const trackers = parts.trackers ?? [];
  bytes.push(parts.trackerCount ?? trackers.length);
  for (const tracker of trackers) bytes.push(tracker.length >> 8, tracker.length & 0xff, ...tracker);
  const files = parts.files ?? [];
  const fileCount = parts.fileCount ?? files.length;
  bytes.push(fileCount >> 8, fileCount & 0xff);
  for (const index of files)
    bytes.push(index >>> 24, (index >> 16) & 0xff, (index >> 8) & 0xff, index & 0xff);
  return Uint8Array.from(bytes);
}

/** An OPEN frame for stream 1 around `payload`. */
function openFrame(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  out.set([1, 0, 0, 0, 1]);
  out.set(payload, 5);
  return out;
}

const ascii = (text: string) => new TextEncoder().encode(text);

function decodedRequest(payload: Uint8Array): StreamRequest | string {
  const decoded = decodeMuxFrame(openFrame(payload));
  if (!decoded.ok) return decoded.reason;
  if (decoded.value.type !== 'open') throw new Error('not an OPEN');
  return decoded.value.request;
}

describe('torrent stream requests', () => {
  it('round-trip through an OPEN frame, as the documented layout', () => {
    const frame = encodeMuxFrame({ type: 'open', streamId: 9, request: TORRENT });
    const payload = frame.subarray(5);
    expect(payload[0]).toBe(2);
    expect(Buffer.from(payload.subarray(1, 21)).toString('hex')).toBe(INFO_HASH);
    expect(payload[21]).toBe(3);
    expect(payload.length).toBe(
      1 + 20 + 1 + TORRENT.trackers.reduce((n, t) => n + 2 + t.length, 0) + 2 + 3 * 4,
    );
    expect(decodeMuxFrame(frame)).toEqual({
      ok: true,
      value: { type: 'open', streamId: 9, request: TORRENT },
    });
  });

  it('round-trip with no trackers and no file selection, and at every bound', () => {
    const bare: TorrentRequest = { kind: 'torrent', infoHash: 'f'.repeat(40), trackers: [], files: [] };
    const longUrl = `http://t.example/${'a'.repeat(MAX_TRACKER_URL_BYTES - 'http://t.example/'.length)}`;
    const biggest: TorrentRequest = {
      kind: 'torrent',
      infoHash: INFO_HASH,
      trackers: Array.from(
        { length: MAX_TORRENT_TRACKERS },
        (_, i) => `${longUrl.slice(0, -3)}${String(i).padStart(3, '0')}`,
      ),
      files: Array.from({ length: MAX_TORRENT_FILE_INDICES }, (_, i) => 0xffff_ffff - i),
    };
    for (const request of [bare, biggest]) {
      expect(validateRequest(request)).toBeUndefined();
      const frame = encodeMuxFrame({ type: 'open', streamId: 1, request });
      // The bounds keep the largest request inside one frame.
      expect(frame.length - 5).toBeLessThanOrEqual(MAX_DATA_PAYLOAD);
      expect(decodeMuxFrame(frame)).toEqual({ ok: true, value: { type: 'open', streamId: 1, request } });
    }
  });

  it('decodes a non-ASCII (IDN) tracker and spells the infohash in lowercase', () => {
    const request = decodedRequest(
      torrentPayload({ hash: Array(20).fill(0xab), trackers: [ascii('http://bücher.example/announce')] }),
    );
    expect(request).toEqual({
      kind: 'torrent',
      infoHash: 'ab'.repeat(20),
      trackers: ['http://bücher.example/announce'],
      files: [],
    });
  });

  it('refuses invalid requests before they are sent', () => {
    const bad: [Partial<TorrentRequest>, string][] = [
      [{ infoHash: INFO_HASH.toUpperCase() }, 'bad infohash'],
      [{ infoHash: INFO_HASH.slice(1) }, 'bad infohash'],
      [{ infoHash: `${INFO_HASH.slice(1)}g` }, 'bad infohash'],
      [{ trackers: Array(MAX_TORRENT_TRACKERS + 1).fill('udp://t.example:80') }, 'too many trackers'],
      [{ trackers: [`http://t.example/${'a'.repeat(MAX_TRACKER_URL_BYTES)}`] }, 'tracker URL too long'],
      [{ trackers: ['ftp://t.example/announce'] }, 'tracker URL scheme not allowed'],
      [{ trackers: ['file:///etc/passwd'] }, 'tracker URL scheme not allowed'],
      [{ trackers: ['javascript:alert(1)'] }, 'tracker URL scheme not allowed'],
      [{ trackers: ['not a url'] }, 'bad tracker URL characters'],
      [{ trackers: ['http://t.example/\nannounce'] }, 'bad tracker URL characters'],
      [{ trackers: ['http://t.example/\u0085'] }, 'bad tracker URL characters'],
      [{ trackers: ['udp:tracker'] }, 'tracker URL has no host'],
      [{ trackers: ['http//t.example'] }, 'bad tracker URL'],
      [{ trackers: [''] }, 'bad tracker URL'],
      [{ files: Array.from({ length: MAX_TORRENT_FILE_INDICES + 1 }, (_, i) => i) }, 'too many file indices'],
      [{ files: [1, 2, 1] }, 'duplicate file index'],
      [{ files: [-1] }, 'bad file index'],
      [{ files: [1.5] }, 'bad file index'],
      [{ files: [2 ** 32] }, 'bad file index'],
    ];
    for (const [change, reason] of bad) {
      expect(validateRequest({ ...TORRENT, ...change })).toBe(reason);
    }
  });

  it('are refused by the opening mux locally, as protocol errors', async () => {
    const sent: Uint8Array[] = [];
    const mux = new Mux({ role: 'initiator', send: (bytes) => sent.push(bytes) });
    const failure = await mux.open({ ...TORRENT, files: [1, 1] }).catch((error: StreamError) => error);
    expect(failure).toMatchObject({ code: 'protocol', message: 'duplicate file index' });
    expect(sent).toEqual([]);
  });

  it('decode hostile payloads strictly: truncation, disagreeing lengths, bad UTF-8, over the bounds', () => {
    const url = ascii('udp://t.example:6969');
    const full = torrentPayload({ trackers: [url], files: [1, 2] });
    const cases: [Uint8Array, string][] = [
      [Uint8Array.of(2), 'OPEN torrent request truncated'],
      [full.subarray(0, 21), 'OPEN torrent request truncated'], // ends inside the infohash's end
      [full.subarray(0, 22), 'OPEN torrent request truncated'], // a tracker count, no tracker
      [full.subarray(0, 23), 'OPEN torrent request truncated'], // half a tracker length
      [full.subarray(0, 30), 'OPEN torrent request truncated'], // tracker shorter than its length
      [full.subarray(0, 22 + 2 + url.length + 1), 'OPEN torrent request truncated'], // half a file count
      [full.subarray(0, full.length - 1), 'OPEN torrent file count mismatch'],
      [Uint8Array.from([...full, 0]), 'OPEN torrent file count mismatch'], // a byte past the end
      [torrentPayload({ files: [1, 2], fileCount: 3 }), 'OPEN torrent file count mismatch'],
      [torrentPayload({ trackers: [url], trackerCount: 2 }), 'OPEN torrent request truncated'],
      [torrentPayload({ trackerCount: MAX_TORRENT_TRACKERS + 1 }), 'too many trackers'],
      [torrentPayload({ trackerCount: 255 }), 'too many trackers'],
      [
        torrentPayload({ trackers: [new Uint8Array(MAX_TRACKER_URL_BYTES + 1).fill(0x61)] }),
        'tracker URL too long',
      ],
      [torrentPayload({ fileCount: MAX_TORRENT_FILE_INDICES + 1 }), 'too many file indices'],
      [torrentPayload({ trackers: [Uint8Array.of(0x68, 0xc3, 0x28)] }), 'tracker URL is not UTF-8'],
      [torrentPayload({ trackers: [ascii('gopher://t.example')] }), 'tracker URL scheme not allowed'],
      [torrentPayload({ trackers: [ascii('http://t.example/\tx')] }), 'bad tracker URL characters'],
      [torrentPayload({ files: [5, 5] }), 'duplicate file index'],
      [Uint8Array.of(3, 0, 80, 1, 0x61), 'unknown request kind'],
      [Uint8Array.of(0), 'unknown request kind'],
      [new Uint8Array(0), 'OPEN request truncated'],
    ];
    for (const [payload, reason] of cases) expect(decodedRequest(payload)).toBe(reason);
  });

  it('close the receiving mux with malformed-frame when hostile', () => {
    const mux = new Mux({ role: 'acceptor', send: () => {} });
    let closed: SessionError | undefined;
    mux.on('close', (error) => (closed = error));
    mux.receive(openFrame(torrentPayload({ files: [1], fileCount: 2 })));
    expect(closed?.code).toBe('malformed-frame');
  });

  it('reach the acceptor as a torrent request', () => {
    const mux = new Mux({ role: 'acceptor', send: () => {} });
    const requests: StreamRequest[] = [];
    mux.on('stream', (_stream, request) => requests.push(request));
    mux.receive(encodeMuxFrame({ type: 'open', streamId: 1, request: TORRENT }));
    expect(requests).toEqual([TORRENT]);
  });
});

describe('stream error codes', () => {
  it('keep their wire values: the torrent codes are appended', () => {
    expect(STREAM_ERROR_CODES.slice(0, 9)).toEqual([
      'policy-denied',
      'dns-failed',
      'refused',
      'timeout',
      'unreachable',
      'limit',
      'reset',
      'protocol',
      'session-closed',
    ]);
    expect(STREAM_ERROR_CODES.indexOf('torrents-off')).toBe(9);
    expect(STREAM_ERROR_CODES.indexOf('metadata-timeout')).toBe(10);
    expect(STREAM_ERROR_CODES.indexOf('too-large')).toBe(11);
    for (const code of ['torrents-off', 'metadata-timeout', 'too-large'] as const) {
      const frame = encodeMuxFrame({ type: 'reset', streamId: 4, code });
      expect(decodeMuxFrame(frame)).toEqual({ ok: true, value: { type: 'reset', streamId: 4, code } });
    }
    expect(decodeMuxFrame(Uint8Array.of(7, 0, 0, 0, 4, 12))).toEqual({ ok: false, reason: 'bad error code' });
  });
});
