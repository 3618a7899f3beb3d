import type { Clock } from '../clock.js';
import { isDestinationRefusal } from '../errors.js';
import type { StreamRequest } from '../tunnel/mux-frames.js';

export const DEFAULT_REFUSED_DESTINATIONS_KEPT = 256;
export const DEFAULT_REFUSED_DESTINATION_MEMORY_MS = 60_000;

export interface RefusedDestinationsOptions {
  clock: Pick<Clock, 'now'>;
  /** How many destinations are remembered at most; the oldest give way (default 256). */
  keep?: number;
  /** How long a refusal is remembered (default 60 s). */
  memoryMs?: number;
}

/**
 * TCP destinations the exit refused lately (a name its DNS does not know, a port its rules forbid, a server that
 * refused or did not answer). A browser connection to one of them waits for the exit's answer instead of sending
 * its first bytes with the open (early data): the browser then gets a proxy error it shows as such, rather than
 * a connection reset after a SOCKS success, which Firefox retries up to ten times. Bounded in entries and time;
 * in memory only.
 */
export class RefusedDestinations {
  /** Destination → when it was last refused; in insertion order, oldest first. */
  private readonly refusedAt = new Map<string, number>();
  private readonly keep: number;
  private readonly memoryMs: number;

  constructor(private readonly options: RefusedDestinationsOptions) {
    this.keep = options.keep ?? DEFAULT_REFUSED_DESTINATIONS_KEPT;
    this.memoryMs = options.memoryMs ?? DEFAULT_REFUSED_DESTINATION_MEMORY_MS;
  }

  /** Remembers a refusal, if `code` is the exit's refusal of the destination itself. */
  note(request: StreamRequest, code: string): void {
    const key = keyOf(request);
    if (key === undefined || !isDestinationRefusal(code)) return;
    this.refusedAt.delete(key);
    this.refusedAt.set(key, this.options.clock.now());
    if (this.refusedAt.size > this.keep) this.refusedAt.delete(this.refusedAt.keys().next().value!);
  }

  has(request: StreamRequest): boolean {
    const key = keyOf(request);
    const at = key === undefined ? undefined : this.refusedAt.get(key);
    if (at === undefined) return false;
    if (this.options.clock.now() - at < this.memoryMs) return true;
    this.refusedAt.delete(key!);
    return false;
  }

  clear(): void {
    this.refusedAt.clear();
  }
}

function keyOf(request: StreamRequest): string | undefined {
  return request.kind === 'tcp' ? `${request.host.toLowerCase()}:${request.port}` : undefined;
}
