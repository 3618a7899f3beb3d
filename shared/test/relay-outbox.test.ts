import { describe, expect, it } from 'vitest';
import { Emitter } from '../src/emitter.js';
import { LINK_HIGH_WATER, type Link, type LinkEvents } from '../src/links/link.js';
import { RelayOutbox } from '../src/engines/relay-outbox.js';

/** A link whose buffer level the test sets; it records what was handed to it. */
class GaugedLink extends Emitter<LinkEvents> implements Link {
  bufferedAmount = 0;
  closed = false;
  readonly sent: number[] = [];
  send(message: Uint8Array): void {
    this.sent.push(message[0]!);
  }
  close(): void {
    this.closed = true;
  }
  drain(): void {
    this.emit('drain');
  }
}

function cell(tag: number, size = 1000): Uint8Array {
  return new Uint8Array(size).fill(tag);
}

describe('RelayOutbox', () => {
  function setup(maxQueuedPerOwner = 10_000) {
    const link = new GaugedLink();
    const overflowed: string[] = [];
    const outbox = new RelayOutbox<string>(link, {
      maxQueuedPerOwner,
      onOverflow: (owner) => overflowed.push(owner),
    });
    return { link, outbox, overflowed };
  }

  it('sends at once while the link has room', () => {
    const { link, outbox } = setup();
    outbox.send(cell(1), 'a');
    outbox.sendControl(cell(2, 6));
    expect(link.sent).toEqual([1, 2]);
    expect(outbox.queuedBytes).toBe(0);
  });

  it('holds cells while the link is above its high-water mark and sends them in order on drain', () => {
    const { link, outbox } = setup();
    link.bufferedAmount = LINK_HIGH_WATER + 1;
    outbox.send(cell(1), 'a');
    outbox.send(cell(2), 'b');
    outbox.sendControl(cell(3, 6));
    expect(link.sent).toEqual([]);
    expect(outbox.queuedBytes).toBe(2000);
    // Even with room again, a new cell may not overtake the queue.
    link.bufferedAmount = 0;
    outbox.send(cell(4), 'a');
    expect(link.sent).toEqual([]);
    link.drain();
    expect(link.sent).toEqual([1, 2, 3, 4]);
    expect(outbox.queuedBytes).toBe(0);
  });

  it('stops flushing when the link fills up again, and goes on at the next drain', () => {
    const { link, outbox } = setup();
    link.bufferedAmount = LINK_HIGH_WATER + 1;
    for (const tag of [1, 2, 3]) outbox.send(cell(tag), 'a');
    link.bufferedAmount = 0;
    link.send = (message) => {
      link.sent.push(message[0]!);
      link.bufferedAmount += LINK_HIGH_WATER + 1; // each send fills the link
    };
    link.drain();
    expect(link.sent).toEqual([1]);
    link.bufferedAmount = 0;
    link.drain();
    expect(link.sent).toEqual([1, 2]);
  });

  it('refuses and reports the circuit that queues past its limit, and no other', () => {
    const { link, outbox, overflowed } = setup(2500);
    link.bufferedAmount = LINK_HIGH_WATER + 1;
    outbox.send(cell(1), 'greedy');
    outbox.send(cell(2), 'greedy');
    outbox.send(cell(3), 'modest');
    expect(overflowed).toEqual([]);
    outbox.send(cell(4), 'greedy');
    expect(overflowed).toEqual(['greedy']);
    // A control cell is never refused: a circuit cut off still hears why.
    outbox.sendControl(cell(5, 6));
    link.bufferedAmount = 0;
    link.drain();
    expect(link.sent).toEqual([1, 2, 3, 5]);
  });

  it('sends nothing on a closed link', () => {
    const { link, outbox } = setup();
    link.closed = true;
    outbox.send(cell(1), 'a');
    outbox.sendControl(cell(2, 6));
    expect(link.sent).toEqual([]);
    expect(outbox.queuedBytes).toBe(0);
  });
});
