/**
 * The server's Prometheus metrics, on a registry of its own (never prom-client's global one, so several
 * servers in one process, as in tests, do not collide). Served as text on GET /metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PeerRole, SignalingErrorCode } from '@underpass/shared/signaling';
import type { ClaimOutcome } from './broker.js';
import type { MatchObserver } from './matchmaker.js';

/** Why the server refused a connection or a message; one label value each. */
export type RejectionReason =
  | 'server-full'
  | 'per-address'
  | 'rate-limited'
  | 'too-large'
  | 'malformed'
  | 'unsupported-version'
  | 'no-hello'
  | 'bad-proof'
  | 'handshake-timeout'
  | 'idle-timeout'
  | 'ping-timeout'
  | 'too-many-errors'
  | 'queue-full'
  | 'slow-reader'
  | 'not-allowed'
  | 'duplicate-peer'
  | 'duplicate-exit-key';

export class SignalingMetrics implements MatchObserver {
  readonly registry = new Registry();
  private readonly peers: Gauge<'role'>;
  private readonly matches: Counter<'mode'>;
  private readonly unmatchedRequests: Counter<'code'>;
  private readonly rejections: Counter<'reason'>;
  private readonly matchLatency: Histogram;
  private readonly claims: Counter<'outcome'>;
  private readonly takeovers: Counter;

  constructor(sources: { connections: () => number; waitingRequests: () => number }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'underpass_signaling_' });
    this.peers = new Gauge({
      name: 'underpass_signaling_peers',
      help: 'Peers that completed the handshake on this instance, by role',
      labelNames: ['role'],
      registers,
    });
    for (const role of ['client', 'relay', 'exit'] as const) this.peers.set({ role }, 0);
    new Gauge({
      name: 'underpass_signaling_connections',
      help: 'Open WebSocket connections on this instance, including those still in their handshake',
      registers,
      collect() {
        this.set(sources.connections());
      },
    });
    new Gauge({
      name: 'underpass_signaling_waiting_requests',
      help: 'Path requests waiting for a relay with free capacity',
      registers,
      collect() {
        this.set(sources.waitingRequests());
      },
    });
    this.matches = new Counter({
      name: 'underpass_signaling_matches_total',
      help: 'Paths handed out, by mode',
      labelNames: ['mode'],
      registers,
    });
    this.unmatchedRequests = new Counter({
      name: 'underpass_signaling_unmatched_requests_total',
      help: 'Path requests answered with an error, by error code',
      labelNames: ['code'],
      registers,
    });
    this.rejections = new Counter({
      name: 'underpass_signaling_rejections_total',
      help: 'Connections and messages refused, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.matchLatency = new Histogram({
      name: 'underpass_signaling_match_latency_seconds',
      help: 'From a path request arriving to its path being sent, including any wait for a relay',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.claims = new Counter({
      name: 'underpass_signaling_link_claims_total',
      help: 'Link ids claimed with link-resume, by outcome (paired: the link is known again)',
      labelNames: ['outcome'],
      registers,
    });
    this.takeovers = new Counter({
      name: 'underpass_signaling_exit_takeovers_total',
      help: 'Exit registrations taken over by a connection that proved the same exitKey afresh',
      registers,
    });
  }

  exitTakenOver(): void {
    this.takeovers.inc();
  }

  linkClaimed(outcome: ClaimOutcome): void {
    this.claims.inc({ outcome });
  }

  peerJoined(role: PeerRole): void {
    this.peers.inc({ role });
  }

  peerLeft(role: PeerRole): void {
    this.peers.dec({ role });
  }

  rejected(reason: RejectionReason): void {
    this.rejections.inc({ reason });
  }

  matched(mode: 'two-hop' | 'direct', latencyMs: number): void {
    this.matches.inc({ mode });
    this.matchLatency.observe(latencyMs / 1000);
  }

  unmatched(code: SignalingErrorCode): void {
    this.unmatchedRequests.inc({ code });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
