import { describe, expect, it } from 'vitest';
import { memoryLinkPair } from '../src/links/memory-link.js';
import { RelayEngine } from '../src/engines/relay.js';
import { DEFAULT_EXIT_LOOKUP_LIMITS } from '../src/engines/exit-lookups.js';
import { decodeCell, encodeCell } from '../src/tunnel/cells.js';
import { SessionError } from '../src/errors.js';
import { ManualClock } from '../../test/manual-clock.js';

/** A directory that knows no exit, counting what the relay asks it (each ask is a message to the broker). */
function emptyDirectory() {
  const asked: string[] = [];
  return {
    asked,
    connectExit: async (exitKey: Uint8Array) => {
      asked.push(Buffer.from(exitKey).toString('hex'));
      throw new SessionError('wrong-exit', 'no connected exit has this exitKey');
    },
  };
}

function randomKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

/** Lets the relay's promise callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('RelayEngine: exit lookups a client asks for (issue 12: unknown exit keys made the relay flood the broker)', () => {
  it('asks the broker at most its burst of times for hundreds of unknown exit keys at once, and refuses every circuit', async () => {
    const clock = new ManualClock();
    const directory = emptyDirectory();
    const relay = new RelayEngine({ connectExit: directory.connectExit, clock });
    const [client, relaySide] = memoryLinkPair();
    relay.addClientLink(relaySide);
    const closes: string[] = [];
    client.on('message', (bytes) => {
      const cell = decodeCell(bytes);
      if (cell.ok && cell.value.type === 'close') closes.push(cell.value.code);
    });
    // Eight circuits at a time (the per-client cap), each closed by the relay before the next eight.
    for (let round = 0; round < 60; round++) {
      for (let id = 1; id <= 8; id++)
        client.send(encodeCell({ type: 'open', circuitId: id, exitKey: randomKey() }));
      await settle();
    }
    expect(closes).toHaveLength(480);
    expect(new Set(closes)).toEqual(new Set(['wrong-exit']));
    // Time stood still: the broker heard the burst and no more (it allows 400 messages, then 200/s).
    expect(directory.asked).toHaveLength(DEFAULT_EXIT_LOOKUP_LIMITS.burst);

    // A second later the relay may ask again, at its rate.
    clock.advance(1_000);
    for (let id = 1; id <= 8; id++)
      client.send(encodeCell({ type: 'open', circuitId: id, exitKey: randomKey() }));
    await settle();
    expect(directory.asked).toHaveLength(
      DEFAULT_EXIT_LOOKUP_LIMITS.burst + DEFAULT_EXIT_LOOKUP_LIMITS.ratePerSecond,
    );
  });

  it('does not ask again about a key the directory just did not have, and asks once its memory lapses', async () => {
    const clock = new ManualClock();
    const directory = emptyDirectory();
    const relay = new RelayEngine({ connectExit: directory.connectExit, clock });
    const [client, relaySide] = memoryLinkPair();
    relay.addClientLink(relaySide);
    const exitKey = randomKey();
    for (let round = 0; round < 20; round++) {
      client.send(encodeCell({ type: 'open', circuitId: 1, exitKey }));
      await settle();
    }
    expect(directory.asked).toHaveLength(1);
    clock.advance(DEFAULT_EXIT_LOOKUP_LIMITS.failureMemoryMs);
    client.send(encodeCell({ type: 'open', circuitId: 1, exitKey }));
    await settle();
    expect(directory.asked).toHaveLength(2);
  });
});
