import { Emitter } from '../emitter.js';
import { SessionError } from '../errors.js';
import { toBase64Url } from '../bytes.js';
import type { Link } from '../link.js';
import { decodeCell, encodeCell, readdressCell, type Cell } from '../tunnel/cells.js';

/** Opens (or reuses) a link to the exit with this key; rejects when the directory has no such exit. */
export type ExitConnector = (exitKey: Uint8Array) => Promise<Link>;

export interface RelayEngineOptions {
  connectExit: ExitConnector;
  /** Circuits one client link may open. */
  maxCircuitsPerClient?: number;
  /** Cells held for a circuit while its exit link comes up (the handshake, in practice). */
  maxPendingCells?: number;
}

export interface RelayStats {
  clientsNow: number;
  circuitsNow: number;
  circuitsTotal: number;
  bytesFromClients: number;
  bytesToClients: number;
}

export type RelayEngineEvents = { stats: [stats: RelayStats] };

type Circuit = {
  client: Link;
  clientCircuitId: number;
  exitKeyId: string;
  /** Set once the exit link is up; cells wait in `pending` until then. */
  exit: { link: Link; circuitId: number } | undefined;
  pending: Uint8Array[];
};

/**
 * The relay engine: forwards cells between client links and exit links by circuit id. It sees only cell
 * headers; every payload is a session message sealed for the exit (PROTOCOL.md §Cells).
 */
export class RelayEngine extends Emitter<RelayEngineEvents> {
  private readonly clients = new Map<Link, Map<number, Circuit>>();
  private readonly exitLinks = new Map<string, Promise<ExitLinkState>>();
  private circuitsTotal = 0;
  private bytesFromClients = 0;
  private bytesToClients = 0;

  constructor(private readonly options: RelayEngineOptions) {
    super();
  }

  addClientLink(link: Link): void {
    const circuits = new Map<number, Circuit>();
    this.clients.set(link, circuits);
    link.on('message', (bytes) => this.onClientMessage(link, circuits, bytes));
    link.on('close', () => {
      for (const circuit of circuits.values()) this.closeExitSide(circuit, 'link-closed');
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
    for (const circuits of this.clients.values()) circuitsNow += circuits.size;
    return {
      clientsNow: this.clients.size,
      circuitsNow,
      circuitsTotal: this.circuitsTotal,
      bytesFromClients: this.bytesFromClients,
      bytesToClients: this.bytesToClients,
    };
  }

  close(): void {
    for (const link of this.clients.keys()) link.close(new SessionError('closed', 'the relay stopped'));
    for (const state of this.exitLinks.values())
      void state.then(
        (s) => s.link.close(),
        () => undefined,
      );
    this.clients.clear();
    this.exitLinks.clear();
  }

  private onClientMessage(client: Link, circuits: Map<number, Circuit>, bytes: Uint8Array): void {
    const decoded = decodeCell(bytes);
    if (!decoded.ok) {
      client.close(new SessionError('malformed-frame', decoded.reason));
      return;
    }
    const cell = decoded.value;
    const circuit = circuits.get(cell.circuitId);
    switch (cell.type) {
      case 'open':
        if (circuit) {
          client.close(new SessionError('malformed-frame', `circuit ${cell.circuitId} opened twice`));
          return;
        }
        if (circuits.size >= (this.options.maxCircuitsPerClient ?? 8)) {
          sendCell(client, { type: 'close', circuitId: cell.circuitId, code: 'closed' });
          return;
        }
        this.openCircuit(client, circuits, cell.circuitId, cell.exitKey);
        return;
      case 'data': {
        if (!circuit) return; // closed while this was in flight
        this.bytesFromClients += cell.payload.length;
        if (circuit.exit) {
          sendBytes(circuit.exit.link, readdressCell(bytes, circuit.exit.circuitId));
        } else if (circuit.pending.length >= (this.options.maxPendingCells ?? 64)) {
          this.endCircuit(circuits, circuit, 'closed');
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

  private openCircuit(
    client: Link,
    circuits: Map<number, Circuit>,
    circuitId: number,
    exitKey: Uint8Array,
  ): void {
    const exitKeyId = toBase64Url(exitKey);
    const circuit: Circuit = { client, clientCircuitId: circuitId, exitKeyId, exit: undefined, pending: [] };
    circuits.set(circuitId, circuit);
    this.circuitsTotal += 1;
    this.emitStats();
    this.exitLink(exitKeyId, exitKey).then(
      (state) => {
        if (circuits.get(circuitId) !== circuit || client.closed) return;
        const exitCircuitId = state.attach(circuit);
        circuit.exit = { link: state.link, circuitId: exitCircuitId };
        sendCell(state.link, { type: 'open', circuitId: exitCircuitId, exitKey });
        for (const payload of circuit.pending) {
          sendCell(state.link, { type: 'data', circuitId: exitCircuitId, payload });
        }
        circuit.pending = [];
      },
      () => {
        // The directory has no such exit (or it could not be reached): a relay pipes only to listed exits.
        if (circuits.get(circuitId) === circuit) this.endCircuit(circuits, circuit, 'wrong-exit');
      },
    );
  }

  private exitLink(exitKeyId: string, exitKey: Uint8Array): Promise<ExitLinkState> {
    let state = this.exitLinks.get(exitKeyId);
    if (!state) {
      state = this.options.connectExit(exitKey).then((link) => {
        const created = new ExitLinkState(link, (circuit, cell, bytes) =>
          this.toClient(circuit, cell, bytes),
        );
        link.on('close', () => {
          this.exitLinks.delete(exitKeyId);
          for (const circuit of created.detachAll()) {
            const circuits = this.clients.get(circuit.client);
            if (circuits) this.endCircuit(circuits, circuit, 'link-closed');
          }
        });
        return created;
      });
      state.catch(() => this.exitLinks.delete(exitKeyId));
      this.exitLinks.set(exitKeyId, state);
    }
    return state;
  }

  /** A cell from an exit for one of our circuits, and the message it came in. */
  private toClient(circuit: Circuit, cell: Cell, bytes: Uint8Array): void {
    if (cell.type === 'data') {
      this.bytesToClients += cell.payload.length;
      sendBytes(circuit.client, readdressCell(bytes, circuit.clientCircuitId));
    } else if (cell.type === 'close') {
      const circuits = this.clients.get(circuit.client);
      circuits?.delete(circuit.clientCircuitId);
      sendCell(circuit.client, { type: 'close', circuitId: circuit.clientCircuitId, code: cell.code });
      this.emitStats();
    }
  }

  private endCircuit(circuits: Map<number, Circuit>, circuit: Circuit, code: SessionError['code']): void {
    circuits.delete(circuit.clientCircuitId);
    sendCell(circuit.client, { type: 'close', circuitId: circuit.clientCircuitId, code });
    this.closeExitSide(circuit, code);
    this.emitStats();
  }

  private closeExitSide(circuit: Circuit, code: SessionError['code']): void {
    if (!circuit.exit) return;
    const { link, circuitId } = circuit.exit;
    circuit.exit = undefined;
    void this.exitLinks.get(circuit.exitKeyId)?.then((state) => state.detach(circuitId));
    sendCell(link, { type: 'close', circuitId, code });
  }

  private emitStats(): void {
    this.emit('stats', this.stats());
  }
}

/** One link to an exit, shared by every circuit that goes there. */
class ExitLinkState {
  private readonly circuits = new Map<number, Circuit>();
  private nextCircuitId = 1;

  constructor(
    readonly link: Link,
    private readonly toClient: (circuit: Circuit, cell: Cell, bytes: Uint8Array) => void,
  ) {
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

function sendCell(link: Link, cell: Cell): void {
  sendBytes(link, encodeCell(cell));
}

function sendBytes(link: Link, bytes: Uint8Array): void {
  if (!link.closed) link.send(bytes);
}
