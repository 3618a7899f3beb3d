import { STREAM_ERROR_CODES, type StreamErrorCode } from '../errors.js';
import { fromUtf8, utf8, view } from '../bytes.js';

/**
 * Frames of the stream multiplexer (PROTOCOL.md §Streams). One frame is the plaintext of one session message
 * (or, between the companion and the extension, one WebSocket message).
 *
 *   u8 type | u32 stream id | payload
 */
export const MuxFrameType = {
  Open: 1,
  OpenOk: 2,
  OpenFailed: 3,
  Data: 4,
  Window: 5,
  Fin: 6,
  Reset: 7,
  Ping: 8,
  Pong: 9,
} as const;

/** PING and PONG carry this many opaque bytes, echoed unchanged (PROTOCOL.md §4, round trip). */
export const PING_PAYLOAD_BYTES = 8;

export const MUX_HEADER_BYTES = 5;
/**
 * Largest DATA payload. Large messages cost a WebRTC stack less CPU per byte; 60 KiB keeps a frame inside the
 * companion's 64 KiB WebSocket messages and every cell far below DataChannels' 256 KiB message limit.
 */
export const MAX_DATA_PAYLOAD = 60 * 1024;
export const MAX_MUX_FRAME = MUX_HEADER_BYTES + MAX_DATA_PAYLOAD;
export const MAX_HOST_LENGTH = 255;
/** Trackers in one torrent request; a magnet with more is cut by the user's side before it asks. */
export const MAX_TORRENT_TRACKERS = 32;
/** UTF-8 bytes of one tracker URL. */
export const MAX_TRACKER_URL_BYTES = 512;
/** File indices in one torrent request. */
export const MAX_TORRENT_FILE_INDICES = 10_000;
/** Tracker URL schemes the exit's torrent service can use (BEP 3 HTTP, BEP 15 UDP, WebTorrent's WebSocket). */
export const TRACKER_URL_SCHEMES: readonly string[] = ['http:', 'https:', 'udp:', 'ws:', 'wss:'];

/** A TCP connection from the exit to `host:port`. */
export type TcpRequest = { kind: 'tcp'; host: string; port: number };
/** A BitTorrent wire to the exit's torrent service, for one torrent. */
export type TorrentRequest = {
  kind: 'torrent';
  /** The v1 infohash: 40 lowercase hex digits. */
  infoHash: string;
  /** The magnet's trackers (`tr=`), which the exit may use under its address policy. */
  trackers: string[];
  /** Indices of the files the user wants; empty: all of them. */
  files: number[];
};
/** What a stream is opened for (PROTOCOL.md §4, OPEN requests). */
export type StreamRequest = TcpRequest | TorrentRequest;

export type MuxFrame =
  | { type: 'open'; streamId: number; request: StreamRequest }
  | { type: 'open-ok'; streamId: number }
  | { type: 'open-failed'; streamId: number; code: StreamErrorCode }
  | { type: 'data'; streamId: number; data: Uint8Array }
  | { type: 'window'; streamId: number; increment: number }
  | { type: 'fin'; streamId: number }
  | { type: 'reset'; streamId: number; code: StreamErrorCode }
  /** Session-level (stream id 0): asks the far end to echo `payload` at once in a PONG. */
  | { type: 'ping'; streamId: 0; payload: Uint8Array }
  | { type: 'pong'; streamId: 0; payload: Uint8Array };

export type FrameDecodeResult<T> = { ok: true; value: T } | { ok: false; reason: string };

const REQUEST_KIND_TCP = 1;
const REQUEST_KIND_TORRENT = 2;
const INFO_HASH_BYTES = 20;

export function encodeMuxFrame(frame: MuxFrame): Uint8Array {
  let payload: Uint8Array;
  switch (frame.type) {
    case 'open':
      payload = encodeRequest(frame.request);
      break;
    case 'open-ok':
    case 'fin':
      payload = new Uint8Array(0);
      break;
    case 'open-failed':
    case 'reset':
      payload = Uint8Array.of(STREAM_ERROR_CODES.indexOf(frame.code));
      break;
    case 'data':
      payload = frame.data;
      break;
    case 'ping':
    case 'pong':
      payload = frame.payload;
      break;
    case 'window':
      payload = new Uint8Array(4);
      view(payload).setUint32(0, frame.increment);
      break;
  }
  const out = new Uint8Array(MUX_HEADER_BYTES + payload.length);
  const dv = view(out);
  dv.setUint8(0, typeCode(frame.type));
  dv.setUint32(1, frame.streamId);
  out.set(payload, MUX_HEADER_BYTES);
  return out;
}

export function decodeMuxFrame(bytes: Uint8Array): FrameDecodeResult<MuxFrame> {
  if (bytes.length < MUX_HEADER_BYTES) return { ok: false, reason: 'frame shorter than its header' };
  if (bytes.length > MAX_MUX_FRAME) return { ok: false, reason: 'frame larger than the maximum' };
  const dv = view(bytes);
  const type = dv.getUint8(0);
  const streamId = dv.getUint32(1);
  const payload = bytes.subarray(MUX_HEADER_BYTES);
  switch (type) {
    case MuxFrameType.Open: {
      const request = decodeRequest(payload);
      return request.ok ? { ok: true, value: { type: 'open', streamId, request: request.value } } : request;
    }
    case MuxFrameType.OpenOk:
      return payload.length === 0
        ? { ok: true, value: { type: 'open-ok', streamId } }
        : { ok: false, reason: 'OPEN_OK with a payload' };
    case MuxFrameType.Fin:
      return payload.length === 0
        ? { ok: true, value: { type: 'fin', streamId } }
        : { ok: false, reason: 'FIN with a payload' };
    case MuxFrameType.OpenFailed:
    case MuxFrameType.Reset: {
      const code = payload.length === 1 ? STREAM_ERROR_CODES[payload[0]!] : undefined;
      if (!code) return { ok: false, reason: 'bad error code' };
      return {
        ok: true,
        value: { type: type === MuxFrameType.Reset ? 'reset' : 'open-failed', streamId, code },
      };
    }
    case MuxFrameType.Data:
      return payload.length > 0
        ? { ok: true, value: { type: 'data', streamId, data: payload } }
        : { ok: false, reason: 'empty DATA' };
    case MuxFrameType.Window: {
      if (payload.length !== 4) return { ok: false, reason: 'WINDOW payload is not 4 bytes' };
      const increment = view(payload).getUint32(0);
      return increment > 0
        ? { ok: true, value: { type: 'window', streamId, increment } }
        : { ok: false, reason: 'zero WINDOW increment' };
    }
    case MuxFrameType.Ping:
    case MuxFrameType.Pong: {
      const name = type === MuxFrameType.Ping ? 'ping' : 'pong';
      if (streamId !== 0) return { ok: false, reason: `${name.toUpperCase()} on a stream` };
      if (payload.length !== PING_PAYLOAD_BYTES)
        return { ok: false, reason: `${name.toUpperCase()} payload is not ${PING_PAYLOAD_BYTES} bytes` };
      return { ok: true, value: { type: name, streamId: 0, payload } };
    }
    default:
      return { ok: false, reason: `unknown frame type ${type}` };
  }
}

function typeCode(type: MuxFrame['type']): number {
  switch (type) {
    case 'open':
      return MuxFrameType.Open;
    case 'open-ok':
      return MuxFrameType.OpenOk;
    case 'open-failed':
      return MuxFrameType.OpenFailed;
    case 'data':
      return MuxFrameType.Data;
    case 'window':
      return MuxFrameType.Window;
    case 'fin':
      return MuxFrameType.Fin;
    case 'reset':
      return MuxFrameType.Reset;
    case 'ping':
      return MuxFrameType.Ping;
    case 'pong':
      return MuxFrameType.Pong;
  }
}

/**
 * Validates a request before it is sent or acted on; the decoder runs it on every OPEN it reads, so the exit
 * only ever sees requests that pass. Returns why it is invalid, or undefined.
 */
export function validateRequest(request: StreamRequest): string | undefined {
  switch (request.kind) {
    case 'tcp':
      return validateTcpRequest(request);
    case 'torrent':
      return validateTorrentRequest(request);
    default:
      return 'unknown request kind';
  }
}

/** host is a DNS name or an IP literal, port 1–65535. */
function validateTcpRequest(request: TcpRequest): string | undefined {
  if (!Number.isInteger(request.port) || request.port < 1 || request.port > 65535) return 'bad port';
  const host = request.host;
  if (typeof host !== 'string' || host.length === 0 || utf8(host).length > MAX_HOST_LENGTH)
    return 'bad host length';
  // Letters, digits, dot, hyphen, underscore (seen in the wild), and ':' for IPv6 literals. No spaces,
  // no control characters, nothing a resolver or a log line could misread.
  if (!/^[A-Za-z0-9._:-]+$/.test(host)) return 'bad host characters';
  return undefined;
}

/**
 * A v1 infohash in lowercase hex (one spelling per torrent, so the exit's per-torrent bookkeeping cannot be
 * split by case), at most MAX_TORRENT_TRACKERS tracker URLs the exit could use, and distinct file indices.
 * The bounds keep the whole OPEN inside one frame: 24 + 32 × (2 + 512) + 10 000 × 4 = 56 472 bytes.
 */
function validateTorrentRequest(request: TorrentRequest): string | undefined {
  if (typeof request.infoHash !== 'string' || !/^[0-9a-f]{40}$/.test(request.infoHash)) return 'bad infohash';
  if (!Array.isArray(request.trackers) || request.trackers.length > MAX_TORRENT_TRACKERS)
    return 'too many trackers';
  for (const tracker of request.trackers) {
    const invalid = validateTrackerUrl(tracker);
    if (invalid) return invalid;
  }
  if (!Array.isArray(request.files) || request.files.length > MAX_TORRENT_FILE_INDICES)
    return 'too many file indices';
  const seen = new Set<number>();
  for (const index of request.files) {
    if (!Number.isInteger(index) || index < 0 || index > 0xffff_ffff) return 'bad file index';
    if (seen.has(index)) return 'duplicate file index';
    seen.add(index);
  }
  return undefined;
}

/** Why a tracker URL cannot go in a torrent request, or undefined when it can. */
export function validateTrackerUrl(tracker: unknown): string | undefined {
  if (typeof tracker !== 'string' || tracker.length === 0) return 'bad tracker URL';
  if (utf8(tracker).length > MAX_TRACKER_URL_BYTES) return 'tracker URL too long';
  // The URL parser silently drops tabs and newlines and trims spaces: refuse them (and every other control
  // character) first, so what the exit logs and dials is exactly what was sent.
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  if (/[\s\u0000-\u001f\u007f-\u009f]/.test(tracker)) return 'bad tracker URL characters';
  let url: URL;
  try {
    url = new URL(tracker);
  } catch {
    return 'bad tracker URL';
  }
  if (!TRACKER_URL_SCHEMES.includes(url.protocol)) return 'tracker URL scheme not allowed';
  if (url.hostname === '') return 'tracker URL has no host';
  return undefined;
}

function encodeRequest(request: StreamRequest): Uint8Array {
  return request.kind === 'tcp' ? encodeTcpRequest(request) : encodeTorrentRequest(request);
}

/** kind 1 | u16 port | u8 host length | host */
function encodeTcpRequest(request: TcpRequest): Uint8Array {
  const host = utf8(request.host);
  const out = new Uint8Array(4 + host.length);
  const dv = view(out);
  dv.setUint8(0, REQUEST_KIND_TCP);
  dv.setUint16(1, request.port);
  dv.setUint8(3, host.length);
  out.set(host, 4);
  return out;
}

/** kind 2 | 20-byte infohash | u8 tracker count | (u16 length | URL)* | u16 file count | u32 index* */
function encodeTorrentRequest(request: TorrentRequest): Uint8Array {
  const trackers = request.trackers.map(utf8);
  let length = 1 + INFO_HASH_BYTES + 1 + 2 + 4 * request.files.length;
  for (const tracker of trackers) length += 2 + tracker.length;
  const out = new Uint8Array(length);
  const dv = view(out);
  dv.setUint8(0, REQUEST_KIND_TORRENT);
  for (let i = 0; i < INFO_HASH_BYTES; i++)
    out[1 + i] = parseInt(request.infoHash.slice(2 * i, 2 * i + 2), 16);
  let offset = 1 + INFO_HASH_BYTES;
  dv.setUint8(offset++, trackers.length);
  for (const tracker of trackers) {
    dv.setUint16(offset, tracker.length);
    out.set(tracker, offset + 2);
    offset += 2 + tracker.length;
  }
  dv.setUint16(offset, request.files.length);
  offset += 2;
  for (const index of request.files) {
    dv.setUint32(offset, index);
    offset += 4;
  }
  return out;
}

function decodeRequest(payload: Uint8Array): FrameDecodeResult<StreamRequest> {
  if (payload.length < 1) return { ok: false, reason: 'OPEN request truncated' };
  let decoded: FrameDecodeResult<StreamRequest>;
  switch (payload[0]) {
    case REQUEST_KIND_TCP:
      decoded = decodeTcpRequest(payload);
      break;
    case REQUEST_KIND_TORRENT:
      decoded = decodeTorrentRequest(payload);
      break;
    default:
      return { ok: false, reason: 'unknown request kind' };
  }
  if (!decoded.ok) return decoded;
  const invalid = validateRequest(decoded.value);
  return invalid ? { ok: false, reason: invalid } : decoded;
}

function decodeTcpRequest(payload: Uint8Array): FrameDecodeResult<TcpRequest> {
  if (payload.length < 4) return { ok: false, reason: 'OPEN request truncated' };
  const dv = view(payload);
  const port = dv.getUint16(1);
  const hostLength = dv.getUint8(3);
  if (payload.length !== 4 + hostLength) return { ok: false, reason: 'OPEN host length mismatch' };
  const host = fromUtf8(payload.subarray(4));
  if (host === undefined) return { ok: false, reason: 'OPEN host is not UTF-8' };
  return { ok: true, value: { kind: 'tcp', host, port } };
}

/** Reads the torrent layout strictly: every length must fit what is left, and nothing may follow the end. */
function decodeTorrentRequest(payload: Uint8Array): FrameDecodeResult<TorrentRequest> {
  const truncated = { ok: false, reason: 'OPEN torrent request truncated' } as const;
  const dv = view(payload);
  let offset = 1;
  if (payload.length < offset + INFO_HASH_BYTES + 1) return truncated;
  const infoHash = Array.from(payload.subarray(offset, offset + INFO_HASH_BYTES), (byte) =>
    byte.toString(16).padStart(2, '0'),
  ).join('');
  offset += INFO_HASH_BYTES;
  const trackerCount = dv.getUint8(offset++);
  // Checked before reading: a count far past the bound must not cost a loop of that length.
  if (trackerCount > MAX_TORRENT_TRACKERS) return { ok: false, reason: 'too many trackers' };
  const trackers: string[] = [];
  for (let i = 0; i < trackerCount; i++) {
    if (payload.length < offset + 2) return truncated;
    const length = dv.getUint16(offset);
    offset += 2;
    if (length > MAX_TRACKER_URL_BYTES) return { ok: false, reason: 'tracker URL too long' };
    if (payload.length < offset + length) return truncated;
    const tracker = fromUtf8(payload.subarray(offset, offset + length));
    if (tracker === undefined) return { ok: false, reason: 'tracker URL is not UTF-8' };
    trackers.push(tracker);
    offset += length;
  }
  if (payload.length < offset + 2) return truncated;
  const fileCount = dv.getUint16(offset);
  offset += 2;
  if (fileCount > MAX_TORRENT_FILE_INDICES) return { ok: false, reason: 'too many file indices' };
  if (payload.length !== offset + 4 * fileCount) {
    return { ok: false, reason: 'OPEN torrent file count mismatch' };
  }
  const files: number[] = [];
  for (let i = 0; i < fileCount; i++) files.push(dv.getUint32(offset + 4 * i));
  return { ok: true, value: { kind: 'torrent', infoHash, trackers, files } };
}
