import { describe, expect, it } from 'vitest';
import { StreamError } from '../src/errors.js';
import type { ByteStream } from '../src/streams/byte-stream.js';
import { ExitPeer, type ExitPeerState } from '../src/torrent/exit-peer.js';
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
