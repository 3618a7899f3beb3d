import type { Clock } from '../clock.js';
import { STREAM_ERROR_CODES, type StreamErrorCode } from '../errors.js';
import type { StreamRequest } from '../tunnel/mux-frames.js';

/**
 * Why a browser connection got no stream: a code the path gave (the exit's OPEN_FAILED or RESET, our own open
 * timeout, the session ending), or `no-path`: none was up, so the kill switch refused it.
 */
export const REFUSAL_REASONS = [...STREAM_ERROR_CODES, 'no-path'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

export interface Refusal {
  /** `host:port` as the browser asked (`torrent <infohash>` for a torrent stream), cut to a safe length. */
  destination: string;
  reason: RefusalReason;
  /** When, by the log's clock (milliseconds; wall clock in the extension). */
  at: number;
}

export interface RefusalSummary {
  total: number;
  /** Counts by reason; reasons never seen are absent. */
  byReason: Partial<Record<RefusalReason, number>>;
  /** The latest refusals, newest first. */
  recent: Refusal[];
}

export interface RefusalLogOptions {
  /** How many refusals `recent` keeps (default 5). */
  keep?: number;
  /** Characters of a destination kept (default 80); longer ones end in `…`. */
  maxDestinationLength?: number;
  clock: Pick<Clock, 'now'>;
}

export const DEFAULT_REFUSALS_KEPT = 5;
export const DEFAULT_MAX_DESTINATION_LENGTH = 80;

/**
 * The refused requests of one Protect run, for the popup to say in words: counts by reason and the last few,
 * bounded whatever the traffic. It lives in memory only; nothing in it is sent anywhere.
 */
export class RefusalLog {
  private readonly counts = new Map<RefusalReason, number>();
  private latest: Refusal[] = [];
  private total = 0;
  private readonly keep: number;
  private readonly maxLength: number;

  constructor(private readonly options: RefusalLogOptions) {
    this.keep = options.keep ?? DEFAULT_REFUSALS_KEPT;
    this.maxLength = options.maxDestinationLength ?? DEFAULT_MAX_DESTINATION_LENGTH;
  }

  record(request: StreamRequest, reason: RefusalReason): void {
    this.total += 1;
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    const refusal: Refusal = {
      destination: describeDestination(request, this.maxLength),
      reason,
      at: this.options.clock.now(),
    };
    this.latest = [refusal, ...this.latest].slice(0, this.keep);
  }

  clear(): void {
    this.counts.clear();
    this.latest = [];
    this.total = 0;
  }

  summary(): RefusalSummary {
    return {
      total: this.total,
      byReason: Object.fromEntries(this.counts) as Partial<Record<RefusalReason, number>>,
      recent: this.latest.map((refusal) => ({ ...refusal })),
    };
  }
}

/** The reason a failed open is logged under: a stream error's code, else `unreachable`. */
export function refusalReasonOf(code: string): RefusalReason {
  return (REFUSAL_REASONS as readonly string[]).includes(code) ? (code as StreamErrorCode) : 'unreachable';
}

/**
 * What the browser asked for, printable and short. A request that reached the engine passed the mux's checks
 * (host `[A-Za-z0-9._:-]`, ≤ 255 bytes), but this is shown to the user, so it is checked again rather than
 * trusted: anything else becomes `?`, and a long name is cut, keeping the port.
 */
export function describeDestination(request: StreamRequest, maxLength: number): string {
  if (request.kind === 'torrent') return cut(`torrent ${printable(String(request.infoHash))}`, maxLength);
  const host = printable(String(request.host));
  const port = `:${Number.isInteger(request.port) ? String(request.port) : '?'}`;
  const shown = host.includes(':') ? `[${host}]` : host;
  return `${cut(shown, Math.max(1, maxLength - port.length))}${port}`;
}

function printable(text: string): string {
  // Sliced first: the check must not cost more for a hostile length.
  return text.slice(0, 1024).replace(/[^A-Za-z0-9._:-]/g, '?');
}

function cut(text: string, maxLength: number): string {
  return text.length <= maxLength ? text : `${text.slice(0, Math.max(0, maxLength - 1))}…`;
}
