/**
 * From what happened (requests, faults, the website's witness) to the figures of the run: pure, so that the
 * arithmetic is tested apart from the browsers.
 */
import type { RequestRecord } from './load';

export const FAULT_KINDS = [
  'relay_loss',
  'exit_loss',
  'signaling_restart',
  'companion_loss',
  'network_drop',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export type FaultRecord = {
  kind: FaultKind;
  /** When the fault was injected. */
  at: number;
  /** What was hit, in words (which exit, which instance…). */
  target: string;
  /** When what was taken away was back (restarted, network up); the fault's window ends after it. */
  restoredAt?: number;
  /** End of the first successful request started at or after `at`; absent if none came in time. */
  recoveredAt?: number;
  /** The harness had to turn Protect off and on (as a user would) because nothing recovered by itself. */
  userRepair?: boolean;
  /**
   * End of the fault's window: the later of its recovery and its restore, or, when it did not recover by
   * itself, when the user's repair brought the requests back. Absent: open to the end of the run.
   */
  settledAt?: number;
};

export type Spread = { p50: number; p95: number; max: number; count: number };

/** Nearest-rank percentiles (no interpolation: every figure is one that was measured). */
export function spread(values: readonly number[]): Spread | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
  return { p50: rank(50), p95: rank(95), max: sorted[sorted.length - 1]!, count: sorted.length };
}

/** Connections the website saw from anyone but the exits: traffic that went around the tunnel. */
export function leakedConnections(addresses: readonly string[], exitAddresses: readonly string[]): number {
  return addresses.filter((address) => !exitAddresses.includes(address)).length;
}

export type FaultSummary = {
  kind: FaultKind;
  recovery?: Spread;
  /** For faults that last (a part down, the network cut): from the part's return to the next success. */
  afterRestore?: Spread;
  unrecovered: number;
  /** Requests that ended in failure inside this kind's windows (from the fault to `settledAt`). */
  failedRequests: number;
};

function windowEnd(fault: FaultRecord): number {
  return fault.settledAt ?? Number.POSITIVE_INFINITY;
}

export function summarizeFaults(
  faults: readonly FaultRecord[],
  requests: readonly RequestRecord[],
): FaultSummary[] {
  return FAULT_KINDS.map((kind) => {
    const ofKind = faults.filter((fault) => fault.kind === kind);
    const recovered = ofKind.filter((fault) => fault.recoveredAt !== undefined);
    const failedRequests = requests.filter(
      (r) => !r.ok && ofKind.some((fault) => r.endedAt >= fault.at && r.endedAt <= windowEnd(fault)),
    ).length;
    const recovery = spread(recovered.map((fault) => fault.recoveredAt! - fault.at));
    const afterRestore = spread(
      recovered
        .filter((fault) => fault.restoredAt !== undefined)
        .map((fault) => Math.max(0, fault.recoveredAt! - fault.restoredAt!)),
    );
    return {
      kind,
      ...(recovery ? { recovery } : {}),
      ...(afterRestore ? { afterRestore } : {}),
      unrecovered: ofKind.length - recovered.length,
      failedRequests,
    };
  });
}

/** Failures counted by code, most frequent first. */
export function failuresByCode(requests: readonly RequestRecord[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const r of requests)
    if (!r.ok) counts.set(r.code ?? 'unknown', (counts.get(r.code ?? 'unknown') ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}
