import { afterEach, describe, expect, it } from 'vitest';
import { memoryLinkPair, type MemoryLink } from '../src/links/memory-link.js';
import { ExitEngine, DEFAULT_MAX_SESSIONS, type LinkOrigin } from '../src/exit/exit-engine.js';
import { decodeCell, encodeCell } from '../src/tunnel/cells.js';
import { generateStaticKeyPair } from '../src/tunnel/noise.js';
import { StreamError } from '../src/errors.js';
import { ManualClock } from '../../test/manual-clock.js';
import { developmentCertificateFor } from '../src/trust/index.js';

const staticKey = generateStaticKeyPair();
const neverDial = { dial: () => Promise.reject(new StreamError('unreachable', 'no dialing here')) };

/** The far end of one link into the exit: sends raw OPEN cells and counts the CLOSE cells that come back. */
class Opener {
  readonly refused = new Map<number, string>();
  private nextId = 1;
  constructor(readonly link: MemoryLink) {
    link.on('message', (bytes) => {
      const cell = decodeCell(bytes);
      if (cell.ok && cell.value.type === 'close') this.refused.set(cell.value.circuitId, cell.value.code);
    });
  }
  /** Empty circuits: an OPEN each, and never a handshake. */
  open(count: number): void {
    for (let i = 0; i < count; i++)
      this.link.send(encodeCell({ type: 'open', circuitId: this.nextId++, exitKey: staticKey.publicKey }));
  }
  close(circuitId: number): void {
    this.link.send(encodeCell({ type: 'close', circuitId, code: 'closed' }));
  }
  get sent(): number {
    return this.nextId - 1;
  }
}

describe('exit session caps per link and per peer (issue 12: one party filled the global cap over 10 links)', () => {
  let exit: ExitEngine | undefined;
  afterEach(() => exit?.close());

  function start(options: { maxCircuitsPerPeer?: number } = {}) {
    // A clock that stands still: no handshake times out while the test fills the exit.
    exit = new ExitEngine({
      staticKey,
      certificate: developmentCertificateFor(staticKey.publicKey),
      dialer: neverDial,
      clock: new ManualClock(),
      ...options,
    });
    return exit;
  }
  function connect(engine: ExitEngine, origin?: LinkOrigin): Opener {
    const [near, far] = memoryLinkPair();
    engine.addLink(far, origin);
    return new Opener(near);
  }

  it('ten links opening 1,024 empty circuits each leave room for an eleventh link', async () => {
    const engine = start();
    const hostile = Array.from({ length: 10 }, (_, i) => connect(engine, { peerId: `hostile-${i}` }));
    for (const opener of hostile) opener.open(1024);
    await expect
      .poll(() => hostile.reduce((n, o) => n + o.refused.size, 0) + engine.stats().sessions, {
        timeout: 20_000,
      })
      .toBe(10 * 1024);
    expect(engine.stats().sessions).toBeLessThan(DEFAULT_MAX_SESSIONS);
    for (const opener of hostile) {
      // Each link got its share and no more; the rest was refused with CLOSE `closed`.
      expect(opener.refused.size).toBe(1024 - 512);
      expect(new Set(opener.refused.values())).toEqual(new Set(['closed']));
    }
    const honest = connect(engine, { peerId: 'honest' });
    honest.open(1);
    await expect.poll(() => engine.stats().sessions).toBe(10 * 512 + 1);
    expect(honest.refused.size).toBe(0);
  }, 60_000);

  it('when it closes, tells every circuit (CLOSE `closed`) before it closes the links', async () => {
    const engine = start();
    const openers = [connect(engine), connect(engine)];
    for (const opener of openers) opener.open(3);
    await expect.poll(() => engine.stats().sessions).toBe(6);
    engine.close();
    exit = undefined;
    for (const opener of openers) {
      await expect.poll(() => opener.link.closed).toBe(true);
      expect([...opener.refused.entries()]).toEqual([
        [1, 'closed'],
        [2, 'closed'],
        [3, 'closed'],
      ]);
    }
    expect(engine.stats()).toMatchObject({ links: 0, sessions: 0 });
  });

  it('links from one peer share its cap; a closed circuit gives its place back', async () => {
    const engine = start({ maxCircuitsPerPeer: 10 });
    const first = connect(engine, { peerId: 'relay-a' });
    const second = connect(engine, { peerId: 'relay-a' });
    const other = connect(engine, { peerId: 'relay-b' });
    first.open(6);
    second.open(6);
    other.open(6);
    await expect.poll(() => engine.stats().sessions).toBe(16);
    expect(first.refused.size + second.refused.size).toBe(2);
    expect(other.refused.size).toBe(0);
    first.close(1);
    await expect.poll(() => engine.stats().sessions).toBe(15);
    second.open(1);
    await expect.poll(() => engine.stats().sessions).toBe(16);
    expect(second.refused.has(second.sent)).toBe(false);
    // The link closing hands back all of its circuits.
    first.link.close();
    await expect.poll(() => engine.stats().sessions).toBe(16 - 5);
    second.open(5);
    await expect.poll(() => engine.stats().sessions).toBe(16);
  });
});
