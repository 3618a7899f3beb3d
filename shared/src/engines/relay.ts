import { Emitter } from '../emitter.js';
import { SessionError } from '../errors.js';
import { toBase64Url } from '../bytes.js';
import type { Link } from '../links/link.js';
import { decodeCell, encodeCell, readdressCell, type Cell } from '../tunnel/cells.js';
import { DEFAULT_SESSION_WINDOW } from '../tunnel/mux.js';
import { RelayOutbox } from './relay-outbox.js';
import { ExitLookups, type ExitLookupLimits } from './exit-lookups.js';
import type { Clock } from '../clock.js';

/** Opens (or reuses) a link to the exit with this key; rejects when the directory has no such exit. */
export type ExitConnector = (exitKey: Uint8Array) => Promise<Link>;

export interface RelayEngineOptions {
  connectExit: ExitConnector;
  /** Circuits one client link may open. */
  maxCircuitsPerClient?: number;
  /** Cells held for a circuit while its exit link comes up (the handshake, in practice). */
  maxPendingCells?: number;
  /** Bytes one circuit may have waiting, in each direction, for a congested link. */
  maxQueuedPerCircuit?: number;
  /** How often the relay may ask the broker for an exit link on its clients' behalf (see ExitLookups). */
  exitLookups?: Partial<ExitLookupLimits>;
  clock?: Pick<Clock, 'now'>;
}

/** Circuits one client link may open at a relay: a browser needs one, and a few while it rebuilds. */
export const DEFAULT_MAX_CIRCUITS_PER_CLIENT = 8;
/** Cells held for a circuit while its exit link comes up: the handshake and the first opens, in practice. */
export const DEFAULT_MAX_PENDING_CELLS = 64;
/**
 * Bytes one circuit may have waiting, in each direction, for a congested link: twice a session's window, room
 * for cell and cipher overhead and for control frames, which the window does not count.
 */
export const DEFAULT_MAX_QUEUED_PER_CIRCUIT = 2 * DEFAULT_SESSION_WINDOW;

export interface RelayStats {
  clientsNow: number;
  circuitsNow: number;
  circuitsTotal: number;
  bytesFromClients: number;
  bytesToClients: number;
}

export type RelayEngineEvents = { stats: [stats: RelayStats] };

type Circuit = {
  client: ClientState;
  clientCircuitId: number;
  exitKeyId: string;
  /** Set once the exit link is up; cells wait in `pending` until then. */
  exit: { outbox: RelayOutbox<Circuit>; circuitId: number } | undefined;
  pending: Uint8Array[];
};

type ClientState = { outbox: RelayOutbox<Circuit>; circuits: Map<number, Circuit> };

/** Not yet ended: its client still lists it under its id (an id may be reused once it has ended). */
const isLive = (circuit: Circuit): boolean =>
  circuit.client.circuits.get(circuit.clientCircuitId) === circuit;

/**
 * The relay engine: forwards cells between client links and exit links by circuit id. It sees only cell
 * headers; every payload is a session message sealed for the exit (PROTOCOL.md §Cells).
 */
export class RelayEngine extends Emitter<RelayEngineEvents> {
  private readonly clients = new Map<Link, ClientState>();
  private readonly exitLinks = new Map<string, Promise<LinkToExit>>();
  private circuitsTotal = 0;
  private bytesFromClients = 0;
  private bytesToClients = 0;
  private readonly exitLookups: ExitLookups;
  /** Every live link's outbox, for `queuedBytes`. */
  private readonly outboxes = new Set<RelayOutbox<Circuit>>();

  constructor(private readonly options: RelayEngineOptions) {
    super();
    this.exitLookups = new ExitLookups(options.exitLookups, options.clock);
  }

  addClientLink(link: Link): void {
    const client: ClientState = { outbox: this.outbox(link), circuits: new Map() };
    this.clients.set(link, client);
    link.on('message', (bytes) => this.onClientMessage(client, bytes));
    link.on('close', () => {
      for (const circuit of client.circuits.values()) this.closeExitSide(circuit, 'link-closed');
      this.clients.delete(link);
      this.emitStats();
    });
    this.emitStats();
  }

  /**
   * Start bringing up the link to an exit before a circuit needs it: the broker names the exit when it
   * assigns a client, so the two WebRTC setups (client→relay, relay→exit) overlap instead of adding up.
   */
  warmExit(exitKey: Uint8Array): void {
    this.exitLink(toBase64Url(exitKey), exitKey).catch(() => undefined);
  }

  stats(): RelayStats {
    let circuitsNow = 0;
    for (const { circuits } of this.clients.values()) circuitsNow += circuits.size;
    return {
      clientsNow: this.clients.size,
      circuitsNow,
      circuitsTotal: this.circuitsTotal,
      bytesFromClients: this.bytesFromClients,
      bytesToClients: this.bytesToClients,
    };
  }

  /** Bytes of cells waiting in the relay for congested links, all links together (the relay's own queue). */
  queuedBytes(): number {
    let total = 0;
    for (const outbox of this.outboxes) total += outbox.queuedBytes;
    return total;
  }

  close(): void {
    for (const link of this.clients.keys()) link.close(new SessionError('closed', 'the relay stopped'));
    for (const state of this.exitLinks.values())
      void state.then(
        (s) => s.outbox.link.close(),
        () => undefined,
      );
    this.clients.clear();
    this.exitLinks.clear();
  }

  /** One outbox per link, in both directions: a circuit that overfills one is cut off, the others go on. */
  private outbox(link: Link): RelayOutbox<Circuit> {
    const outbox = new RelayOutbox<Circuit>(link, {
      maxQueuedPerOwner: this.options.maxQueuedPerCircuit ?? DEFAULT_MAX_QUEUED_PER_CIRCUIT,
      onOverflow: (circuit) => {
        if (isLive(circuit)) this.endCircuit(circuit, 'window-overrun');
      },
    });
    this.outboxes.add(outbox);
    link.on('close', () => this.outboxes.delete(outbox));
    return outbox;
  }

  private onClientMessage(client: ClientState, bytes: Uint8Array): void {
    const { circuits, outbox } = client;
    const decoded = decodeCell(bytes);
    if (!decoded.ok) {
      outbox.link.close(new SessionError('malformed-frame', decoded.reason));
      return;
    }
    const cell = decoded.value;
    const circuit = circuits.get(cell.circuitId);
    switch (cell.type) {
      case 'open':
        if (circuit) {
          outbox.link.close(new SessionError('malformed-frame', `circuit ${cell.circuitId} opened twice`));
          return;
        }
        if (circuits.size >= (this.options.maxCircuitsPerClient ?? DEFAULT_MAX_CIRCUITS_PER_CLIENT)) {
          outbox.sendControl(encodeCell({ type: 'close', circuitId: cell.circuitId, code: 'closed' }));
          return;
        }
        this.openCircuit(client, cell.circuitId, cell.exitKey);
        return;
      case 'data': {
        if (!circuit) return; // closed while this was in flight
        this.bytesFromClients += cell.payload.length;
        if (circuit.exit) {
          circuit.exit.outbox.send(readdressCell(bytes, circuit.exit.circuitId), circuit);
        } else if (circuit.pending.length >= (this.options.maxPendingCells ?? DEFAULT_MAX_PENDING_CELLS)) {
          this.endCircuit(circuit, 'closed');
        } else {
          circuit.pending.push(cell.payload.slice());
        }
        return;
      }
      case 'close':
        if (!circuit) return;
        circuits.delete(cell.circuitId);
        this.closeExitSide(circuit, cell.code);
        this.emitStats();
        return;
    }
  }

  private openCircuit(client: ClientState, circuitId: number, exitKey: Uint8Array): void {
    const exitKeyId = toBase64Url(exitKey);
    const circuit: Circuit = { client, clientCircuitId: circuitId, exitKeyId, exit: undefined, pending: [] };
    client.circuits.set(circuitId, circuit);
    this.circuitsTotal += 1;
    this.emitStats();
    this.exitLink(exitKeyId, exitKey).then(
      (state) => {
        if (!isLive(circuit) || client.outbox.link.closed) return;
        const exitCircuitId = state.attach(circuit);
        circuit.exit = { outbox: state.outbox, circuitId: exitCircuitId };
        state.outbox.sendControl(encodeCell({ type: 'open', circuitId: exitCircuitId, exitKey }));
        for (const payload of circuit.pending) {
          state.outbox.send(encodeCell({ type: 'data', circuitId: exitCircuitId, payload }), circuit);
        }
        circuit.pending = [];
      },
      () => {
        // The directory has no such exit (or it could not be reached): a relay pipes only to listed exits.
        if (isLive(circuit)) this.endCircuit(circuit, 'wrong-exit');
      },
    );
  }

  private exitLink(exitKeyId: string, exitKey: Uint8Array): Promise<LinkToExit> {
    let state = this.exitLinks.get(exitKeyId);
    if (!state) {
      const verdict = this.exitLookups.admit(exitKeyId);
      if (verdict !== 'ask') return Promise.reject(new SessionError('wrong-exit', `exit lookup ${verdict}`));
      state = this.options.connectExit(exitKey).then((link) => {
        const created = new LinkToExit(this.outbox(link), (circuit, cell, bytes) =>
          this.toClient(circuit, cell, bytes),
        );
        link.on('close', () => {
          this.exitLinks.delete(exitKeyId);
          for (const circuit of created.detachAll()) {
            if (isLive(circuit)) this.endCircuit(circuit, 'link-closed');
          }
        });
        return created;
      });
      state.catch(() => {
        this.exitLinks.delete(exitKeyId);
        this.exitLookups.failed(exitKeyId);
      });
      this.exitLinks.set(exitKeyId, state);
    }
    return state;
  }

  /** A cell from an exit for one of our circuits, and the message it came in. */
  private toClient(circuit: Circuit, cell: Cell, bytes: Uint8Array): void {
    const { outbox, circuits } = circuit.client;
    if (cell.type === 'data') {
      this.bytesToClients += cell.payload.length;
      outbox.send(readdressCell(bytes, circuit.clientCircuitId), circuit);
    } else if (cell.type === 'close') {
      circuits.delete(circuit.clientCircuitId);
      outbox.sendControl(encodeCell({ type: 'close', circuitId: circuit.clientCircuitId, code: cell.code }));
      this.emitStats();
    }
  }

  private endCircuit(circuit: Circuit, code: SessionError['code']): void {
    const { outbox, circuits } = circuit.client;
    circuits.delete(circuit.clientCircuitId);
    outbox.sendControl(encodeCell({ type: 'close', circuitId: circuit.clientCircuitId, code }));
    this.closeExitSide(circuit, code);
    this.emitStats();
  }

  private closeExitSide(circuit: Circuit, code: SessionError['code']): void {
    if (!circuit.exit) return;
    const { outbox, circuitId } = circuit.exit;
    circuit.exit = undefined;
    void this.exitLinks.get(circuit.exitKeyId)?.then((state) => state.detach(circuitId));
    outbox.sendControl(encodeCell({ type: 'close', circuitId, code }));
  }

  private emitStats(): void {
    this.emit('stats', this.stats());
  }
}

/** The relay's link to one exit, shared by every circuit that goes there, and the exit-side ids it gave them. */
class LinkToExit {
  private readonly circuits = new Map<number, Circuit>();
  private nextCircuitId = 1;

  constructor(
    readonly outbox: RelayOutbox<Circuit>,
    private readonly toClient: (circuit: Circuit, cell: Cell, bytes: Uint8Array) => void,
  ) {
    const link = outbox.link;
    link.on('message', (bytes) => {
      const decoded = decodeCell(bytes);
      if (!decoded.ok) {
        link.close(new SessionError('malformed-frame', decoded.reason));
        return;
      }
      const cell = decoded.value;
      const circuit = this.circuits.get(cell.circuitId);
      if (!circuit) return;
      if (cell.type === 'close') this.circuits.delete(cell.circuitId);
      if (cell.type === 'open') {
        link.close(new SessionError('malformed-frame', 'an exit may not open circuits'));
        return;
      }
      this.toClient(circuit, cell, bytes);
    });
  }

  attach(circuit: Circuit): number {
    let id = this.nextCircuitId;
    // Ids wrap after 2³²−1 circuits; skip any still in use (there are at most a few thousand).
    while (this.circuits.has(id)) id = id >= 0xffffffff ? 1 : id + 1;
    this.nextCircuitId = id >= 0xffffffff ? 1 : id + 1;
    this.circuits.set(id, circuit);
    return id;
  }

  detach(circuitId: number): void {
    this.circuits.delete(circuitId);
  }

  detachAll(): Circuit[] {
    const all = [...this.circuits.values()];
    this.circuits.clear();
    return all;
  }
}
