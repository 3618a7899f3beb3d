import { describe, expect, it } from 'vitest';
import { StreamError } from '../src/errors.js';
import type { ByteStream } from '../src/streams/byte-stream.js';
import { ExitPeer, type ExitPeerState } from '../src/torrent/exit-peer.js';
import { EXIT_WIRE_MIN_SPEED } from '../src/torrent/exit-wire.js';
import { SELECTION_EXTENSION, decodeSelection } from '../src/torrent/selection-extension.js';
import { SWARM_PEERS_EXTENSION, encodeSwarmPeers } from '../src/torrent/swarm-peers-extension.js';
import type { TorrentRequest } from '../src/tunnel/mux-frames.js';
import { ManualClock } from '../../test/manual-clock.js';
import { EchoStream } from './helpers.js';

const REQUEST: TorrentRequest = { kind: 'torrent', infoHash: 'b'.repeat(40), trackers: [], files: [] };

/** An ExitPeer over scripted opens: each open takes the next answer (a stream, or an error). */
function setup(answers: (ByteStream | StreamError)[]) {
  const clock = new ManualClock();
  const peers: object[] = [];
  const opened: TorrentRequest[] = [];
  const states: ExitPeerState['status'][] = [];
  const exitPeer = new ExitPeer({
    open: async (request) => {
      opened.push(request);
      const answer = answers.shift();
      if (!answer) throw new StreamError('unreachable', 'no path');
      if (answer instanceof StreamError) throw answer;
      return answer;
    },
    torrent: { addPeer: (peer) => peers.push(peer) > 0 },
    request: REQUEST,
    clock,
  });
  exitPeer.on('state', (state) => states.push(state.status));
  /** Lets the scripted open settle. */
  const settle = () => new Promise<void>((resolve) => queueMicrotask(() => queueMicrotask(resolve)));
  return { exitPeer, clock, peers, opened, states, settle };
}

describe('ExitPeer', () => {
  it("attaches the exit's wire as the torrent's one peer", async () => {
    const { exitPeer, peers, opened, settle } = setup([new EchoStream()]);
    exitPeer.start();
    await settle();
    expect(opened).toEqual([REQUEST]);
    expect(peers).toHaveLength(1);
    expect(exitPeer.state).toEqual({ status: 'connected' });
  });

  it('opens the wire again after a pause when the path is lost, and attaches the new one', async () => {
    const first = new EchoStream();
    const { exitPeer, clock, peers, settle } = setup([first, new EchoStream()]);
    exitPeer.start();
    await settle();
    first.destroy(new StreamError('session-closed', 'the path closed'));
    expect(exitPeer.state).toMatchObject({ status: 'waiting', code: 'session-closed', attempt: 0 });
    clock.advance(999);
    expect(peers).toHaveLength(1);
    clock.advance(1);
    await settle();
    expect(peers).toHaveLength(2);
    expect(exitPeer.state).toEqual({ status: 'connected' });
  });

  it('backs off while no path can be had, doubling the pause up to its cap', async () => {
    const { exitPeer, clock, opened, settle } = setup([]);
    exitPeer.start();
    await settle();
    for (const pause of [1_000, 2_000, 4_000, 8_000]) {
      const before = opened.length;
      clock.advance(pause - 1);
      await settle();
      expect(opened).toHaveLength(before);
      clock.advance(1);
      await settle();
      expect(opened).toHaveLength(before + 1);
    }
    expect(exitPeer.state).toMatchObject({ status: 'waiting', code: 'unreachable', attempt: 4 });
  });

  it('stops trying when the exit refuses the torrent itself', async () => {
    const wire = new EchoStream();
    const { exitPeer, clock, opened, settle } = setup([wire]);
    exitPeer.start();
    await settle();
    wire.destroy(new StreamError('metadata-timeout', 'no metadata in time'));
    expect(exitPeer.state).toEqual({
      status: 'failed',
      code: 'metadata-timeout',
      reason: 'no metadata in time',
    });
    clock.advance(60_000);
    await settle();
    expect(opened).toHaveLength(1);
    expect(clock.pending).toBe(0);
  });

  it('ends its wire and its retries when stopped', async () => {
    const wire = new EchoStream();
    const { exitPeer, clock, states, settle } = setup([wire]);
    exitPeer.start();
    await settle();
    exitPeer.stop();
    expect(wire.closed).toBe(true);
    expect(exitPeer.state).toEqual({ status: 'stopped' });
    expect(clock.pending).toBe(0);
    expect(states).toEqual(['connecting', 'connected', 'stopped']);
  });
});

/** The part of a bittorrent-protocol wire ExitPeer touches, scripted: what it sends, what it registered. */
class FakeWire {
  destroyed = false;
  peerExtendedMapping: Record<string, number> = {};
  readonly sent: { extension: string; message: Uint8Array }[] = [];
  readonly extensions = new Map<string, { onMessage(message: Uint8Array): void }>();
  private readonly listeners: ((extension: string | number) => void)[] = [];
  downloadSpeed = (_bytes?: number) => 0;
  readonly haves: number[] = [];
  have(index: number): void {
    this.haves.push(index);
  }

  use(Extension: new (wire: FakeWire) => { onMessage(message: Uint8Array): void }): void {
    const name = (Extension.prototype as { name: string }).name;
    this.extensions.set(name, new Extension(this));
  }
  extended(extension: string, message: Uint8Array): void {
    this.sent.push({ extension, message });
  }
  on(_event: 'extended', listener: (extension: string | number) => void): void {
    this.listeners.push(listener);
  }
  /** The exit's extended handshake arrives, announcing `extensions`. */
  handshake(extensions: string[]): void {
    extensions.forEach((name, index) => (this.peerExtendedMapping[name] = index + 1));
    for (const listener of this.listeners) listener('handshake');
  }
  selections(): number[][] {
    return this.sent
      .filter((message) => message.extension === SELECTION_EXTENSION)
      .map((message) => decodeSelection(message.message)!);
  }
}

/** An ExitPeer whose torrent makes a FakeWire for each peer, as WebTorrent does for a connected object. */
function setupWithWires(answers: ByteStream[], files: number[] = []) {
  const clock = new ManualClock();
  const wires: FakeWire[] = [];
  const opened: TorrentRequest[] = [];
  const peers = new Map<string, { wire: FakeWire }>();
  const states: ExitPeerState[] = [];
  const exitPeer = new ExitPeer({
    open: async (request) => {
      opened.push(request);
      const answer = answers.shift();
      if (!answer) throw new StreamError('unreachable', 'no path');
      return answer;
    },
    torrent: {
      addPeer: (peer) => {
        const wire = new FakeWire();
        wires.push(wire);
        peers.set((peer as { id: string }).id, { wire });
        return true;
      },
      _peers: peers,
    },
    request: { ...REQUEST, files },
    clock,
  });
  exitPeer.on('state', (state) => states.push(state));
  const settle = () => new Promise<void>((resolve) => queueMicrotask(() => queueMicrotask(resolve)));
  return { exitPeer, clock, wires, opened, states, settle };
}

describe('ExitPeer on the wire', () => {
  it('sends a new selection on the open wire, once the exit has announced the extension', async () => {
    const { exitPeer, wires, opened, settle } = setupWithWires([new EchoStream()], [1]);
    exitPeer.start();
    await settle();
    const wire = wires[0]!;
    exitPeer.select([1, 2]); // before the exit's extended handshake: it waits
    expect(wire.selections()).toEqual([]);
    wire.handshake([SELECTION_EXTENSION]);
    expect(wire.selections()).toEqual([[1, 2]]);
    exitPeer.select([1, 2]); // the exit has it already
    exitPeer.select([]); // every file
    expect(wire.selections()).toEqual([[1, 2], []]);
    expect(opened).toHaveLength(1);
  });

  it('sends nothing the OPEN already said, and opens later wires with the latest selection', async () => {
    const first = new EchoStream();
    const { exitPeer, wires, opened, clock, settle } = setupWithWires([first, new EchoStream()], [3]);
    exitPeer.start();
    await settle();
    wires[0]!.handshake([SELECTION_EXTENSION]);
    expect(wires[0]!.selections()).toEqual([]);
    first.destroy(new StreamError('session-closed', 'the path closed'));
    exitPeer.select([4]); // no wire now: the next OPEN carries it
    clock.advance(1_000);
    await settle();
    expect(opened.map((request) => request.files)).toEqual([[3], [4]]);
    wires[1]!.handshake([SELECTION_EXTENSION]);
    expect(wires[1]!.selections()).toEqual([]);
  });

  it("hears the exit's swarm peers, tells a change by emitting its state, and forgets them with the wire", async () => {
    const first = new EchoStream();
    const { exitPeer, wires, states, settle } = setupWithWires([first]);
    exitPeer.start();
    await settle();
    const extension = wires[0]!.extensions.get(SWARM_PEERS_EXTENSION)!;
    expect(extension).toBeDefined(); // announced in the user's extended handshake
    const before = states.length;
    extension.onMessage(encodeSwarmPeers(7));
    expect(exitPeer.swarmPeers).toBe(7);
    expect(states.slice(before)).toEqual([{ status: 'connected' }]);
    extension.onMessage(encodeSwarmPeers(7)); // no change, no event
    extension.onMessage(new TextEncoder().encode('{"peers":-1}')); // not a count: ignored
    expect(states.slice(before)).toHaveLength(1);
    expect(exitPeer.swarmPeers).toBe(7);
    first.destroy(new StreamError('session-closed', 'the path closed'));
    expect(exitPeer.swarmPeers).toBeUndefined();
  });

  it("keeps the exit wire's request pipeline at least two stream windows deep, and sends the exit no haves", async () => {
    const { exitPeer, wires, settle } = setupWithWires([new EchoStream()]);
    exitPeer.start();
    await settle();
    expect(wires[0]!.downloadSpeed()).toBe(EXIT_WIRE_MIN_SPEED);
    wires[0]!.have(3);
    expect(wires[0]!.haves).toEqual([]);
  });
});
