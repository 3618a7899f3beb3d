import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EngineEvent } from '../lib/messages';
import { offscreenChannel } from '../lib/offscreen-channel';

/**
 * The Chrome channel to the offscreen document, against a fake of the few `chrome` APIs it uses: one
 * document at most (as Chrome enforces), messages that fail while the new document has no listener yet.
 */

const OK_REPLY = {
  ok: true,
  status: { protect: { status: 'off' }, volunteer: { status: 'off' }, downloads: { status: 'off' } },
};

function fakeChrome() {
  const state = {
    documents: 0,
    creates: 0,
    closes: 0,
    /** Whether a new document starts listening and says so (the offscreen document's `offscreen-ready`). */
    documentStarts: true,
    listening: false,
    reply: OK_REPLY as unknown,
    listeners: [] as ((message: unknown, sender: { id?: string }) => void)[],
  };
  const chromeApi = {
    runtime: {
      id: 'our-id',
      ContextType: { OFFSCREEN_DOCUMENT: 'OFFSCREEN_DOCUMENT' },
      getURL: (path: string) => `chrome-extension://our-id/${path}`,
      getContexts: async () => Array.from({ length: state.documents }, () => ({})),
      sendMessage: async () => {
        if (state.documents === 0 || !state.listening)
          throw new Error('Could not establish connection. Receiving end does not exist.');
        return state.reply;
      },
      onMessage: {
        addListener: (listener: (typeof state.listeners)[number]) => state.listeners.push(listener),
      },
    },
    offscreen: {
      Reason: { WEB_RTC: 'WEB_RTC' },
      createDocument: async () => {
        state.creates += 1;
        await Promise.resolve();
        if (state.documents > 0) throw new Error('Only a single offscreen document may be created.');
        state.documents = 1;
        if (!state.documentStarts) return;
        // The document's script runs after createDocument resolves, then announces itself.
        setTimeout(startListening, 5);
      },
      closeDocument: async () => {
        state.closes += 1;
        state.documents = 0;
      },
    },
  };
  /** The document's script has run: it listens, and says so. */
  function startListening() {
    state.listening = true;
    for (const listener of state.listeners)
      listener({ target: 'background', type: 'offscreen-ready' }, { id: 'our-id' });
  }
  return { state, chromeApi, startListening };
}

let fake: ReturnType<typeof fakeChrome>;
beforeEach(() => {
  fake = fakeChrome();
  vi.stubGlobal('chrome', fake.chromeApi);
});
afterEach(() => vi.unstubAllGlobals());

const STATUS = { target: 'offscreen', type: 'status' } as const;

describe('offscreenChannel', () => {
  it('does not create the document for a command that must not, and says the engines are not running', async () => {
    const reply = await offscreenChannel().send(STATUS, { create: false });
    expect(reply).toMatchObject({ ok: false, code: 'no-offscreen' });
    expect(fake.state.creates).toBe(0);
  });

  it('creates one document for concurrent commands and delivers both', async () => {
    const channel = offscreenChannel();
    const replies = await Promise.all([
      channel.send(STATUS, { create: true }),
      channel.send(STATUS, { create: true }),
    ]);
    expect(replies).toEqual([OK_REPLY, OK_REPLY]);
    expect(fake.state.documents).toBe(1);
    expect(fake.state.creates).toBe(1);
  });

  it('waits for a new document to say it listens before delivering', async () => {
    const channel = offscreenChannel();
    expect(await channel.send(STATUS, { create: true })).toEqual(OK_REPLY);
    expect(await channel.send(STATUS, { create: true })).toEqual(OK_REPLY);
    expect(fake.state.creates).toBe(1);
  });

  it('turns a malformed reply into a typed failure', async () => {
    fake.state.reply = { ok: 'maybe' };
    const reply = await offscreenChannel().send(STATUS, { create: true });
    expect(reply).toMatchObject({
      ok: false,
      code: 'offscreen-unreachable',
      reason: expect.stringContaining('malformed'),
    });
  });

  it('gives up on a document that never says it listens, with a typed failure', async () => {
    fake.state.documentStarts = false;
    vi.useFakeTimers();
    try {
      const sending = offscreenChannel({ readyTimeoutMs: 1_000 }).send(STATUS, { create: true });
      await vi.runAllTimersAsync();
      expect(await sending).toMatchObject({
        ok: false,
        code: 'offscreen-unreachable',
        reason: expect.stringContaining('did not start listening'),
      });
    } finally {
      vi.useRealTimers();
    }
  });

  it('waits for a document that exists but does not listen yet (left by a worker that died as it started)', async () => {
    fake.state.documents = 1;
    const sending = offscreenChannel().send(STATUS, { create: false });
    setTimeout(fake.startListening, 20);
    expect(await sending).toEqual(OK_REPLY);
  });

  it('uses the document another context created in the same moment', async () => {
    fake.state.documents = 0;
    const channel = offscreenChannel();
    const original = fake.chromeApi.offscreen.createDocument;
    fake.chromeApi.offscreen.createDocument = async () => {
      fake.state.documents = 1;
      fake.state.listening = true;
      throw new Error('Only a single offscreen document may be created.');
    };
    expect(await channel.send(STATUS, { create: true })).toEqual(OK_REPLY);
    fake.chromeApi.offscreen.createDocument = original;
  });

  it('closes the document on release only when there is one', async () => {
    const channel = offscreenChannel();
    await channel.release();
    expect(fake.state.closes).toBe(0);
    await channel.send(STATUS, { create: true });
    await channel.release();
    expect(fake.state.closes).toBe(1);
    expect(fake.state.documents).toBe(0);
  });

  it('passes on only well-formed events from this extension addressed to the background', () => {
    const events: EngineEvent[] = [];
    offscreenChannel().onEvent((event) => events.push(event));
    const deliver = (message: unknown, id = 'our-id') =>
      fake.state.listeners.forEach((l) => l(message, { id }));
    const ready = { target: 'background', type: 'offscreen-ready' };
    deliver(ready, 'another-extension');
    deliver({ target: 'offscreen', type: 'status' });
    deliver({ target: 'background', type: 'protect-state', state: { status: 'sideways' } });
    deliver(ready);
    expect(events).toEqual([ready]);
  });
});
