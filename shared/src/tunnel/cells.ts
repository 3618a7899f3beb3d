import { SESSION_ERROR_CODES, type SessionErrorCode } from '../errors.js';
import { view } from '../bytes.js';
import { KEY_BYTES } from './noise.js';
import { MAX_MUX_FRAME } from './mux-frames.js';
import type { FrameDecodeResult } from './mux-frames.js';

/**
 * Cells are what a link (one DataChannel) carries: the only layer a relay can read (PROTOCOL.md §Cells).
 *
 *   u8 type | u32 circuit id | payload
 */
export const CELL_HEADER_BYTES = 5;
const NOISE_OVERHEAD = 16;
/** A DATA cell carries one session message: a sealed mux frame, or a handshake message (48 bytes). */
export const MAX_CELL_PAYLOAD = MAX_MUX_FRAME + NOISE_OVERHEAD;
export const MAX_CELL = CELL_HEADER_BYTES + MAX_CELL_PAYLOAD;

export type Cell =
  /** Client → relay → exit: start a circuit to the exit holding this static key. */
  | { type: 'open'; circuitId: number; exitKey: Uint8Array }
  /** Either way: one session message, opaque to relays. */
  | { type: 'data'; circuitId: number; payload: Uint8Array }
  /** Either way: the circuit is over, and why. */
  | { type: 'close'; circuitId: number; code: SessionErrorCode };

const CELL_OPEN = 1;
const CELL_DATA = 2;
const CELL_CLOSE = 3;

export function encodeCell(cell: Cell): Uint8Array {
  const payload =
    cell.type === 'open'
      ? cell.exitKey
      : cell.type === 'data'
        ? cell.payload
        : Uint8Array.of(SESSION_ERROR_CODES.indexOf(cell.code));
  const out = new Uint8Array(CELL_HEADER_BYTES + payload.length);
  const dv = view(out);
  dv.setUint8(0, cell.type === 'open' ? CELL_OPEN : cell.type === 'data' ? CELL_DATA : CELL_CLOSE);
  dv.setUint32(1, cell.circuitId);
  out.set(payload, CELL_HEADER_BYTES);
  return out;
}

/**
 * Moves a received cell onto another circuit by rewriting its circuit id in place, and returns the same bytes.
 * A relay forwards every DATA cell this way: re-encoding would allocate and copy up to 60 KiB per cell, on the
 * one path whose cost is per byte. The caller must own `bytes` (a message it received, never one it still
 * reads elsewhere) and must have decoded it first: only a valid cell is forwarded.
 */
export function readdressCell(bytes: Uint8Array, circuitId: number): Uint8Array {
  view(bytes).setUint32(1, circuitId);
  return bytes;
}

export function decodeCell(bytes: Uint8Array): FrameDecodeResult<Cell> {
  if (bytes.length < CELL_HEADER_BYTES) return { ok: false, reason: 'cell shorter than its header' };
  if (bytes.length > MAX_CELL) return { ok: false, reason: 'cell larger than the maximum' };
  const dv = view(bytes);
  const type = dv.getUint8(0);
  const circuitId = dv.getUint32(1);
  if (circuitId === 0) return { ok: false, reason: 'circuit id 0 is reserved' };
  const payload = bytes.subarray(CELL_HEADER_BYTES);
  switch (type) {
    case CELL_OPEN:
      return payload.length === KEY_BYTES
        ? { ok: true, value: { type: 'open', circuitId, exitKey: payload.slice() } }
        : { ok: false, reason: 'OPEN cell must carry a 32-byte exit key' };
    case CELL_DATA:
      return payload.length > 0
        ? { ok: true, value: { type: 'data', circuitId, payload } }
        : { ok: false, reason: 'empty DATA cell' };
    case CELL_CLOSE: {
      const code = payload.length === 1 ? SESSION_ERROR_CODES[payload[0]!] : undefined;
      return code
        ? { ok: true, value: { type: 'close', circuitId, code } }
        : { ok: false, reason: 'CLOSE cell needs one known reason byte' };
    }
    default:
      return { ok: false, reason: `unknown cell type ${type}` };
  }
}
