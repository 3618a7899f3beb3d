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
} as const;

export const MUX_HEADER_BYTES = 5;
/**
 * Largest DATA payload. Large messages cost a WebRTC stack less CPU per byte; 60 KiB keeps a frame inside the
 * companion's 64 KiB WebSocket messages and every cell far below DataChannels' 256 KiB message limit.
 */
export const MAX_DATA_PAYLOAD = 60 * 1024;
export const MAX_MUX_FRAME = MUX_HEADER_BYTES + MAX_DATA_PAYLOAD;
export const MAX_HOST_LENGTH = 255;

/** What a stream is opened for. Later issues add `torrent`. */
export type StreamRequest = { kind: 'tcp'; host: string; port: number };

export type MuxFrame =
  | { type: 'open'; streamId: number; request: StreamRequest }
  | { type: 'open-ok'; streamId: number }
  | { type: 'open-failed'; streamId: number; code: StreamErrorCode }
  | { type: 'data'; streamId: number; data: Uint8Array }
  | { type: 'window'; streamId: number; increment: number }
  | { type: 'fin'; streamId: number }
  | { type: 'reset'; streamId: number; code: StreamErrorCode };

export type FrameDecodeResult<T> = { ok: true; value: T } | { ok: false; reason: string };

const REQUEST_KIND_TCP = 1;

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
  }
}

/** Validates a request before it is sent or acted on: host is a DNS name or an IP literal, port 1–65535. */
export function validateRequest(request: StreamRequest): string | undefined {
  if (request.kind !== 'tcp') return 'unknown request kind';
  if (!Number.isInteger(request.port) || request.port < 1 || request.port > 65535) return 'bad port';
  const host = request.host;
  if (host.length === 0 || utf8(host).length > MAX_HOST_LENGTH) return 'bad host length';
  // Letters, digits, dot, hyphen, underscore (seen in the wild), and ':' for IPv6 literals. No spaces,
  // no control characters, nothing a resolver or a log line could misread.
  if (!/^[A-Za-z0-9._:-]+$/.test(host)) return 'bad host characters';
  return undefined;
}

function encodeRequest(request: StreamRequest): Uint8Array {
  const host = utf8(request.host);
  const out = new Uint8Array(4 + host.length);
  const dv = view(out);
  dv.setUint8(0, REQUEST_KIND_TCP);
  dv.setUint16(1, request.port);
  dv.setUint8(3, host.length);
  out.set(host, 4);
  return out;
}

function decodeRequest(payload: Uint8Array): FrameDecodeResult<StreamRequest> {
  if (payload.length < 4) return { ok: false, reason: 'OPEN request truncated' };
  const dv = view(payload);
  if (dv.getUint8(0) !== REQUEST_KIND_TCP) return { ok: false, reason: 'unknown request kind' };
  const port = dv.getUint16(1);
  const hostLength = dv.getUint8(3);
  if (payload.length !== 4 + hostLength) return { ok: false, reason: 'OPEN host length mismatch' };
  const host = fromUtf8(payload.subarray(4));
  if (host === undefined) return { ok: false, reason: 'OPEN host is not UTF-8' };
  const request: StreamRequest = { kind: 'tcp', host, port };
  const invalid = validateRequest(request);
  return invalid ? { ok: false, reason: invalid } : { ok: true, value: request };
}
