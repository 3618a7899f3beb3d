/**
 * How the lanes of one link (StripedLink) are agreed and set up through the broker without it knowing: every
 * lane is its own simple-peer, and all their signals travel as the `signal.data` of the one link id.
 *
 * - Lane 0's signals are simple-peer's own objects, as on a link without lanes, so a peer that predates lanes
 *   understands them. Its offer carries `lanes` (how many the initiator wants) and the answer `lanes` (how many
 *   the responder agreed to, never more); an answer without it means one, a plain link.
 * - Lane k ≥ 1's signals are wrapped: `{ lane: k, signal: <simple-peer's object> }`, sent only once both sides
 *   know the count, so a peer without lanes never sees one.
 * - Receipts (StripedLink): an offer or answer that names `lanes` also names `receipts: true`; they are used only
 *   when both lane 0's offer and its answer name them, so peers from before receipts see none.
 * - Resends (StripedLink): likewise `resends: true` beside `receipts: true`; used only when both name them, so a
 *   peer from before resends, which takes a copy for a violation, is never sent one.
 */

/** Most lanes a link may have; each is a PeerConnection with its own ports, DTLS and SCTP. */
export const MAX_LANES = 8;

export type LaneSignal = { lane: number; signal: Record<string, unknown> } | { malformed: string };

/** Splits an incoming `signal.data` into its lane and simple-peer's object. */
export function readLaneSignal(data: unknown): LaneSignal {
  if (!isRecord(data)) return { malformed: 'a signal that is not an object' };
  if (!('lane' in data)) {
    const { lanes: _lanes, receipts: _receipts, resends: _resends, ...signal } = data;
    return { lane: 0, signal };
  }
  const { lane, signal } = data;
  if (typeof lane !== 'number' || !Number.isInteger(lane) || lane < 1 || lane >= MAX_LANES) {
    return { malformed: `a signal for lane ${String(lane)}` };
  }
  if (!isRecord(signal)) return { malformed: `a signal for lane ${lane} without its object` };
  return { lane, signal };
}

/**
 * The `lanes` an offer or answer on lane 0 names: undefined when it names none (a peer without lanes, or a
 * signal that is no offer or answer), a string when it names a bad count.
 */
export function namedLaneCount(data: unknown): number | undefined | { malformed: string } {
  if (!isRecord(data) || (data.type !== 'offer' && data.type !== 'answer') || !('lanes' in data))
    return undefined;
  const { lanes } = data;
  if (typeof lanes !== 'number' || !Number.isInteger(lanes) || lanes < 1 || lanes > MAX_LANES) {
    return { malformed: `an ${String(data.type)} for ${String(lanes)} lanes` };
  }
  return lanes;
}

/** Whether lane 0's offer or answer names receipts (anything but `true` names none). */
export function namesReceipts(data: unknown): boolean {
  return isRecord(data) && (data.type === 'offer' || data.type === 'answer') && data.receipts === true;
}

/** Whether lane 0's offer or answer names resends (only beside receipts; anything but `true` names none). */
export function namesResends(data: unknown): boolean {
  return namesReceipts(data) && isRecord(data) && data.resends === true;
}

/** What an end names beside the lane count on lane 0's offer or answer. */
export interface LaneFeatures {
  receipts: boolean;
  /** Only with receipts. */
  resends: boolean;
}

/**
 * What goes out as `signal.data` for simple-peer's `signal` on a lane; `lanes` is named on lane 0's offer or
 * answer, with `receipts` and `resends` when this end names them too.
 */
export function writeLaneSignal(
  lane: number,
  signal: unknown,
  lanes: number | undefined,
  features: LaneFeatures = { receipts: false, resends: false },
): unknown {
  if (lane > 0) return { lane, signal };
  if (lanes === undefined || !isRecord(signal) || (signal.type !== 'offer' && signal.type !== 'answer')) {
    return signal;
  }
  if (!features.receipts) return { ...signal, lanes };
  return features.resends
    ? { ...signal, lanes, receipts: true, resends: true }
    : { ...signal, lanes, receipts: true };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
