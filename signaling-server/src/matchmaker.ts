/**
 * Making links: a client's path (the exit picked, then a link through the best relay or straight to the exit,
 * with the queue of two-hop requests waiting for relay capacity and their retries), and a relay's link to an
 * exit. Socket-free; the broker hands it requests from peers whose role it has checked, and it answers
 * through `send`.
 */
import { systemClock, type Clock } from '@underpass/shared/clock';
import { errorMessage } from '@underpass/shared/errors';
import { silentLogger, type Logger } from '@underpass/shared/logger';
import type {
  ConnectExitMessage,
  LinkMessage,
  PathRequestMessage,
  ServerMessage,
  SignalingErrorCode,
} from '@underpass/shared/signaling';
import { offers, type LinkEntry, type PeerEntry, type Registry } from './registry.js';

/** What the matcher reports about its work; the server turns these into Prometheus metrics. */
export interface MatchObserver {
  /** A path was handed out `latencyMs` after its request arrived (including any wait for a relay). */
  matched(mode: 'two-hop' | 'direct', latencyMs: number): void;
  /** A path request ended without a path. */
  unmatched(code: SignalingErrorCode): void;
}

export type MatchmakerOptions = {
  registry: Registry;
  send: (peerId: string, msg: ServerMessage) => void;
  newId: () => string;
  /** Every link made here, so the broker can route signals on it without a registry lookup. */
  remember: (link: LinkEntry) => void;
  maxLinksPerClient: number;
  /** How long a two-hop request waits for a relay with free capacity before `no-relay-available`. 0: not at all. */
  matchWaitMs: number;
  /** Requests waiting for a relay at once, over all clients; beyond it, `no-relay-available` at once. */
  maxWaitingRequests: number;
  /** `now` for latencies, timers for the wait. */
  clock?: Clock;
  logger?: Logger;
  observer?: MatchObserver;
};

type Waiter = {
  client: string;
  msg: PathRequestMessage;
  /** The exit chosen on arrival; re-checked on every retry (see retry()). */
  exit: PeerEntry;
  started: number;
  timer: unknown;
};

/** What the matchmaker needs to know about the peer asking. */
export type Member = Pick<PeerEntry, 'peerId' | 'role' | 'capacity'>;

export class Matchmaker {
  private readonly clock: Clock;
  private readonly logger: Logger;
  /** Two-hop requests waiting for relay capacity, oldest first. */
  private readonly waiting = new Set<Waiter>();
  private retrying: Promise<void> | undefined;
  private retryAgain = false;

  constructor(private readonly options: MatchmakerOptions) {
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
  }

  /** Requests waiting for a relay now. */
  get waitingRequests(): number {
    return this.waiting.size;
  }

  /** Answers a client's path request: a path, an error, or (two-hop, no relay free) a place in the queue. */
  async pathRequest(clientId: string, msg: PathRequestMessage): Promise<void> {
    const { requestId } = msg;
    const started = this.clock.now();
    const exit = await this.options.registry.pickExit(msg.exitKey, msg.needs);
    if (!exit || exit.exitKey === undefined) {
      await this.failNoExit(clientId, msg);
      return;
    }
    const outcome = await this.tryMatch(clientId, msg, exit, started);
    if (outcome !== 'no-relay') return;
    const waitMs = this.options.matchWaitMs;
    const full = this.waiting.size >= this.options.maxWaitingRequests;
    let mine = 0;
    for (const w of this.waiting) if (w.client === clientId) mine++;
    if (waitMs <= 0 || full || mine >= this.options.maxLinksPerClient) {
      this.fail(clientId, 'no-relay-available', 'no relay has free capacity', requestId);
      return;
    }
    // The connection keeps being served while this request waits: nothing here blocks its queue.
    const waiter: Waiter = {
      client: clientId,
      msg,
      exit,
      started,
      timer: this.clock.setTimeout(() => {
        if (!this.waiting.delete(waiter)) return;
        this.fail(
          clientId,
          'no-relay-available',
          `no relay had free capacity within ${waitMs} ms`,
          requestId,
        );
      }, waitMs),
    };
    this.waiting.add(waiter);
  }

  /** Drops the waiting requests of a client that left. */
  forget(clientId: string): void {
    for (const waiter of this.waiting) {
      if (waiter.client !== clientId) continue;
      this.clock.clearTimeout(waiter.timer);
      this.waiting.delete(waiter);
    }
  }

  /** Drops the waiting requests without answering them: on shutdown their sockets are closing anyway. */
  stop(): void {
    for (const waiter of this.waiting) this.clock.clearTimeout(waiter.timer);
    this.waiting.clear();
  }

  /**
   * Retries the waiting requests, oldest first: called when a relay joins or a link closes here, and by
   * the server when another instance says capacity was freed there.
   */
  capacityFreed(): void {
    if (this.waiting.size === 0) return;
    if (this.retrying) {
      this.retryAgain = true;
      return;
    }
    this.retrying = (async () => {
      do {
        this.retryAgain = false;
        for (const waiter of [...this.waiting]) {
          if (!this.waiting.has(waiter)) continue;
          const outcome = await this.retry(waiter);
          if (outcome === 'no-relay') break;
          this.clock.clearTimeout(waiter.timer);
          this.waiting.delete(waiter);
        }
      } while (this.retryAgain && this.waiting.size > 0);
    })()
      .catch((error: unknown) =>
        this.logger.error({ err: errorMessage(error) }, 'error while retrying requests'),
      )
      .finally(() => {
        this.retrying = undefined;
      });
  }

  /**
   * One more attempt for a waiting request. The exit it chose on arrival may have left during the wait: it is
   * looked up again, and a request that named no exit gets the least-loaded one of now.
   */
  private async retry(waiter: Waiter): Promise<'done' | 'no-relay'> {
    const { client, msg, started } = waiter;
    const { registry } = this.options;
    // An exit that reconnected under the same key is the same exit: its new connection serves the request.
    let exit = waiter.exit.exitKey === undefined ? undefined : await registry.getExit(waiter.exit.exitKey);
    // It may have come back without the service the request needs.
    if (exit && !offers(exit, msg.needs)) exit = undefined;
    if (!exit && msg.exitKey === undefined) exit = await registry.pickExit(undefined, msg.needs);
    if (!exit || exit.exitKey === undefined) {
      if (msg.exitKey !== undefined)
        this.fail(
          client,
          'unknown-exit',
          'the exit left while the request waited for a relay',
          msg.requestId,
        );
      else this.fail(client, 'no-exit-available', noExitMessage(msg), msg.requestId);
      return 'done';
    }
    waiter.exit = exit;
    return this.tryMatch(client, msg, exit, started);
  }

  /** One attempt at a path; 'no-relay' leaves the request unanswered (the caller may wait and retry). */
  private async tryMatch(
    clientId: string,
    msg: PathRequestMessage,
    exit: PeerEntry,
    started: number,
  ): Promise<'done' | 'no-relay'> {
    const { requestId } = msg;
    const { maxLinksPerClient } = this.options;
    const exitKey = exit.exitKey ?? '';
    const linkId = this.options.newId();
    const result = await this.options.registry.createLink({
      linkId,
      initiator: clientId,
      hop: msg.mode === 'direct' ? exit.peerId : { bestRelay: true },
      maxInitiatorLinks: maxLinksPerClient,
    });
    if (result.ok) this.options.remember(result.link);
    else {
      switch (result.reason) {
        case 'no-relay':
          return 'no-relay';
        case 'limit':
          this.fail(
            clientId,
            'rate-limited',
            `a client may hold ${maxLinksPerClient} links; close one first`,
            requestId,
          );
          return 'done';
        case 'hop-gone':
          this.fail(clientId, 'no-exit-available', 'the exit left while the path was being made', requestId);
          return 'done';
        case 'initiator-gone':
          // Nobody to answer if the client left; if it is still here, the registry lost it (see lost()).
          this.fail(clientId, 'unavailable', 'you are not registered any more; reconnect', requestId);
          return 'done';
      }
    }
    const hop = result.hop;
    const hopRole = hop.role === 'exit' ? 'exit' : 'relay';
    const exitRef = exitRefOf(exit, exitKey);
    this.options.send(hop.peerId, {
      type: 'link',
      linkId,
      initiator: false,
      peer: { peerId: clientId, role: 'client' },
      exit: exitRef,
    });
    this.options.send(clientId, {
      type: 'path',
      requestId,
      linkId,
      hop: { peerId: hop.peerId, role: hopRole },
      exit: exitRef,
    });
    this.options.observer?.matched(msg.mode, this.clock.now() - started);
    this.logger.debug(
      { linkId, client: clientId, hop: hop.peerId, exit: exit.peerId, mode: msg.mode },
      'path',
    );
    return 'done';
  }

  /** Answers a relay's connect-exit: a link to the exit with that key, the relay initiating. */
  async connectExit(relay: Member, msg: ConnectExitMessage): Promise<void> {
    const { requestId } = msg;
    // Not pickExit: a relay's link to an exit is no client path, so it must not count as a pending one.
    const exit = await this.options.registry.getExit(msg.exitKey);
    if (!exit || exit.exitKey === undefined) {
      this.error(relay.peerId, 'unknown-exit', 'no connected exit has this exitKey', requestId);
      return;
    }
    const linkId = this.options.newId();
    const result = await this.options.registry.createLink({
      linkId,
      initiator: relay.peerId,
      hop: exit.peerId,
      // A relay multiplexes circuits over its exit links, so its capacity is a generous bound on them.
      maxInitiatorLinks: relay.capacity ?? 1,
    });
    if (result.ok) this.options.remember(result.link);
    else {
      if (result.reason === 'limit')
        this.error(
          relay.peerId,
          'rate-limited',
          'too many exit links for this relay; close one first',
          requestId,
        );
      else if (result.reason !== 'initiator-gone')
        this.error(relay.peerId, 'unknown-exit', 'the exit left while the link was being made', requestId);
      return;
    }
    const exitRef = exitRefOf(exit, exit.exitKey);
    this.options.send(exit.peerId, {
      type: 'link',
      linkId,
      initiator: false,
      peer: { peerId: relay.peerId, role: 'relay' },
    });
    const reply: LinkMessage = {
      type: 'link',
      linkId,
      requestId,
      initiator: true,
      peer: { peerId: exit.peerId, role: 'exit' },
      exit: exitRef,
    };
    this.options.send(relay.peerId, reply);
    this.logger.debug({ linkId, relay: relay.peerId, exit: exit.peerId }, 'exit link');
  }

  /**
   * No exit for a path request: a pinned key that no connected exit has is `unknown-exit`; a pinned exit
   * without the service the request needs, or no exit (with it) at all, is `no-exit-available`.
   */
  private async failNoExit(clientId: string, msg: PathRequestMessage): Promise<void> {
    const { requestId, exitKey } = msg;
    if (exitKey === undefined) {
      this.fail(clientId, 'no-exit-available', noExitMessage(msg), requestId);
      return;
    }
    // Looked up again only on this error path, to say which of the two it was.
    if (msg.needs !== undefined && (await this.options.registry.getExit(exitKey)))
      this.fail(
        clientId,
        'no-exit-available',
        `the exit with this exitKey does not serve ${msg.needs}s`,
        requestId,
      );
    else this.fail(clientId, 'unknown-exit', 'no connected exit has this exitKey', requestId);
  }

  /** An error answering a path request: counted as unmatched. */
  private fail(peerId: string, code: SignalingErrorCode, message: string, requestId: string): void {
    this.options.observer?.unmatched(code);
    this.error(peerId, code, message, requestId);
  }

  private error(peerId: string, code: SignalingErrorCode, message: string, requestId: string): void {
    this.options.send(peerId, { type: 'error', code, message, requestId });
  }
}

/**
 * How a path or link names its exit; `torrents` and `pings` only when true (absent means no, as from older
 * servers).
 */
function exitRefOf(
  exit: PeerEntry,
  exitKey: string,
): { peerId: string; exitKey: string; torrents?: true; pings?: true } {
  return {
    peerId: exit.peerId,
    exitKey,
    ...(exit.torrents ? { torrents: true } : {}),
    ...(exit.pings ? { pings: true } : {}),
  };
}

function noExitMessage(msg: PathRequestMessage): string {
  return msg.needs === undefined ? 'no exit is connected' : `no connected exit serves ${msg.needs}s`;
}
