/**
 * The broker's protocol logic, free of sockets: it takes already-validated messages from identified peers
 * and answers through a `send(peerId, msg)` callback. It decides who may do what (roles, link membership),
 * matches paths and routes signals between exactly the two members of a link.
 */
import { randomId } from '../../shared/src/signaling/ids.js';
import {
  SIGNALING_PROTOCOL_VERSION,
  type ConnectExitMessage,
  type HelloMessage,
  type LinkMessage,
  type PathRequestMessage,
  type PeerMessage,
  type ServerMessage,
  type SignalingErrorCode,
} from '../../shared/src/signaling/messages.js';
import { silentLogger, type SignalingLogger } from './logger.js';
import type { PeerEntry, Registry } from './registry.js';

export type BrokerOptions = {
  registry: Registry;
  /** Delivers a message to a connected peer; must ignore peers that are gone. */
  send: (peerId: string, msg: ServerMessage) => void;
  maxLinksPerClient: number;
  newId?: () => string;
  logger?: SignalingLogger;
};

/** 'violation' means the peer broke the protocol; the server counts these and closes repeat offenders. */
export type HandleOutcome = 'ok' | 'violation';

export type JoinResult = { ok: true } | { ok: false; code: SignalingErrorCode; message: string };

export type ExitSummary = { peerId: string; exitKey: string; policy: string; load: number };

export class Broker {
  private readonly registry: Registry;
  private readonly send: BrokerOptions['send'];
  private readonly newId: () => string;
  private readonly logger: SignalingLogger;

  constructor(private readonly options: BrokerOptions) {
    this.registry = options.registry;
    this.send = options.send;
    this.newId = options.newId ?? randomId;
    this.logger = options.logger ?? silentLogger;
  }

  /** Registers a peer that said hello under the id the server gave its connection, and welcomes it. */
  async join(peerId: string, hello: HelloMessage): Promise<JoinResult> {
    const result = await this.registry.addPeer({
      peerId,
      role: hello.role,
      capacity: hello.capacity,
      exitKey: hello.exitKey,
      policy: hello.policy,
    });
    if (!result.ok) {
      const message =
        result.reason === 'duplicate-exit-key'
          ? 'another connected exit already announced this exitKey'
          : 'peer id already in use';
      return { ok: false, code: 'not-allowed', message };
    }
    this.logger.info({ peerId, role: hello.role, capacity: hello.capacity }, 'peer joined');
    this.send(peerId, { type: 'welcome', v: SIGNALING_PROTOCOL_VERSION, peerId });
    return { ok: true };
  }

  /** Forgets a peer and closes its links, telling the other member of each. */
  async leave(peerId: string): Promise<void> {
    const links = await this.registry.removePeer(peerId);
    if (!links) return;
    for (const link of links) {
      const other = link.initiator === peerId ? link.hop : link.initiator;
      this.send(other, { type: 'link-closed', linkId: link.linkId });
    }
    this.logger.info({ peerId, links: links.length }, 'peer left');
  }

  async handle(peerId: string, msg: PeerMessage): Promise<HandleOutcome> {
    const peer = await this.registry.getPeer(peerId);
    if (!peer) return 'ok';
    switch (msg.type) {
      case 'hello':
        return this.refuse(peerId, 'hello may be sent once, as the first message');
      case 'path-request':
        if (peer.role !== 'client') return this.refuse(peerId, 'only clients request paths', msg.requestId);
        await this.pathRequest(peer, msg);
        return 'ok';
      case 'connect-exit':
        if (peer.role !== 'relay') return this.refuse(peerId, 'only relays connect to exits', msg.requestId);
        await this.connectExit(peer, msg);
        return 'ok';
      case 'signal': {
        const other = await this.otherMember(peerId, msg.linkId);
        if (other === undefined) return this.unknownLink(peerId, msg.linkId);
        this.send(other, { type: 'signal', linkId: msg.linkId, data: msg.data });
        return 'ok';
      }
      case 'link-closed': {
        const other = await this.otherMember(peerId, msg.linkId);
        if (other === undefined) return this.unknownLink(peerId, msg.linkId);
        // Another close may have won the race between the lookup and here; only the winner forwards.
        if (await this.registry.closeLink(msg.linkId))
          this.send(other, { type: 'link-closed', linkId: msg.linkId });
        return 'ok';
      }
      case 'load':
        if (peer.role === 'client') return this.refuse(peerId, 'only relays and exits report load');
        await this.registry.reportLoad(peerId, msg.load);
        return 'ok';
    }
  }

  async listExits(): Promise<ExitSummary[]> {
    const exits = await this.registry.listExits();
    return exits.map((e) => ({
      peerId: e.peerId,
      exitKey: e.exitKey ?? '',
      policy: e.policy ?? '',
      load: e.load,
    }));
  }

  private async pathRequest(client: PeerEntry, msg: PathRequestMessage): Promise<void> {
    const { requestId } = msg;
    const exit = await this.registry.pickExit(msg.exitKey);
    if (!exit || exit.exitKey === undefined) {
      if (msg.exitKey !== undefined)
        this.error(client.peerId, 'unknown-exit', 'no connected exit has this exitKey', requestId);
      else this.error(client.peerId, 'no-exit-available', 'no exit is connected', requestId);
      return;
    }
    const linkId = this.newId();
    const result = await this.registry.createLink({
      linkId,
      initiator: client.peerId,
      hop: msg.mode === 'direct' ? exit.peerId : { bestRelay: true },
      maxInitiatorLinks: this.options.maxLinksPerClient,
    });
    if (!result.ok) {
      switch (result.reason) {
        case 'no-relay':
          this.error(client.peerId, 'no-relay-available', 'no relay has free capacity', requestId);
          return;
        case 'limit':
          this.error(
            client.peerId,
            'rate-limited',
            `a client may hold ${this.options.maxLinksPerClient} links; close one first`,
            requestId,
          );
          return;
        case 'hop-gone':
          this.error(
            client.peerId,
            'no-exit-available',
            'the exit left while the path was being made',
            requestId,
          );
          return;
        case 'initiator-gone':
          return;
      }
    }
    const hop = result.hop;
    const hopRole = hop.role === 'exit' ? 'exit' : 'relay';
    const exitRef = { peerId: exit.peerId, exitKey: exit.exitKey };
    this.send(hop.peerId, {
      type: 'link',
      linkId,
      initiator: false,
      peer: { peerId: client.peerId, role: 'client' },
      exit: exitRef,
    });
    this.send(client.peerId, {
      type: 'path',
      requestId,
      linkId,
      hop: { peerId: hop.peerId, role: hopRole },
      exit: exitRef,
    });
    this.logger.debug(
      { linkId, client: client.peerId, hop: hop.peerId, exit: exit.peerId, mode: msg.mode },
      'path',
    );
  }

  private async connectExit(relay: PeerEntry, msg: ConnectExitMessage): Promise<void> {
    const { requestId } = msg;
    const exit = await this.registry.pickExit(msg.exitKey);
    if (!exit || exit.exitKey === undefined) {
      this.error(relay.peerId, 'unknown-exit', 'no connected exit has this exitKey', requestId);
      return;
    }
    const linkId = this.newId();
    const result = await this.registry.createLink({
      linkId,
      initiator: relay.peerId,
      hop: exit.peerId,
      // A relay multiplexes circuits over its exit links, so its capacity is a generous bound on them.
      maxInitiatorLinks: relay.capacity ?? 1,
    });
    if (!result.ok) {
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
    const exitRef = { peerId: exit.peerId, exitKey: exit.exitKey };
    this.send(exit.peerId, {
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
    this.send(relay.peerId, reply);
    this.logger.debug({ linkId, relay: relay.peerId, exit: exit.peerId }, 'exit link');
  }

  private async otherMember(peerId: string, linkId: string): Promise<string | undefined> {
    const link = await this.registry.getLink(linkId);
    if (!link) return undefined;
    if (link.initiator === peerId) return link.hop;
    if (link.hop === peerId) return link.initiator;
    return undefined;
  }

  private unknownLink(peerId: string, linkId: string): HandleOutcome {
    // Not a violation: a trailing ICE candidate after the other side closed the link is normal.
    this.error(peerId, 'unknown-link', `no link ${linkId} of yours`);
    return 'ok';
  }

  private refuse(peerId: string, message: string, requestId?: string): HandleOutcome {
    this.error(peerId, 'not-allowed', message, requestId);
    return 'violation';
  }

  private error(peerId: string, code: SignalingErrorCode, message: string, requestId?: string): void {
    const msg: ServerMessage = { type: 'error', code, message };
    if (requestId !== undefined) msg.requestId = requestId;
    this.send(peerId, msg);
  }
}
