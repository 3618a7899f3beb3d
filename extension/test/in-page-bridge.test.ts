import { describe, expect, it } from 'vitest';
import { Emitter } from '@underpass/shared/emitter';
import { bridgePagesToHost, type PageRuntime, type PageSender } from '../lib/in-page-bridge';
import type { EngineEvent, EngineStatus, OffscreenCommand, OffscreenReply } from '../lib/messages';

/**
 * Firefox's bridge between the extension's pages and the engines' host in the background page, against a fake
 * of `browser.runtime` and a host that records what it is asked.
 */

const ID = 'underpass@example.org';
const ORIGIN = 'moz-extension://5f0c2a4e-8f0b-4d7e-9a51-3c1d2b7e6a90/';
const PAGE: PageSender = { id: ID, url: `${ORIGIN}downloads.html` };
const INFO_HASH = 'a'.repeat(40);

const STATUS: EngineStatus = {
  protect: { status: 'off' },
  volunteer: { status: 'off' },
  downloads: { status: 'on', path: { status: 'connecting' }, torrents: [] },
};

class FakeHost extends Emitter<{ event: [event: EngineEvent] }> {
  readonly handled: OffscreenCommand[] = [];
  handle(command: OffscreenCommand): EngineStatus {
    this.handled.push(command);
    return STATUS;
  }
  say(event: EngineEvent): void {
    this.emit('event', event);
  }
}

function setUp(options: { noPageOpen?: boolean } = {}) {
  const host = new FakeHost();
  const sent: EngineEvent[] = [];
  let listener: ((message: unknown, sender: PageSender) => Promise<OffscreenReply> | undefined) | undefined;
  const runtime: PageRuntime = {
    id: ID,
    getURL: (path) => new URL(path, ORIGIN).href,
    onMessage: { addListener: (added) => (listener = added) },
    sendMessage: async (message) => {
      sent.push(message);
      if (options.noPageOpen)
        throw new Error('Could not establish connection. Receiving end does not exist.');
      return undefined;
    },
  };
  bridgePagesToHost({ runtime, host });
  const deliver = (message: unknown, sender: PageSender = PAGE) => listener!(message, sender);
  return { host, sent, deliver };
}

describe('the Firefox bridge from pages to the engines’ host', () => {
  it('answers a page’s Downloads commands and status with every engine’s state', async () => {
    const { host, deliver } = setUp();
    const add: OffscreenCommand = {
      target: 'offscreen',
      type: 'downloads-add',
      magnet: `magnet:?xt=urn:btih:${INFO_HASH}`,
    };
    await expect(deliver(add)).resolves.toEqual({ ok: true, status: STATUS });
    await expect(deliver({ target: 'offscreen', type: 'status' })).resolves.toEqual({
      ok: true,
      status: STATUS,
    });
    await expect(
      deliver({ target: 'offscreen', type: 'downloads-select', infoHash: INFO_HASH, files: [0, 2] }),
    ).resolves.toMatchObject({ ok: true });
    expect(host.handled.map((command) => command.type)).toEqual([
      'downloads-add',
      'status',
      'downloads-select',
    ]);
  });

  it('takes no command that starts or stops an engine: those are the background’s', async () => {
    const { host, deliver } = setUp();
    const commands: OffscreenCommand[] = [
      { target: 'offscreen', type: 'downloads-stop' },
      {
        target: 'offscreen',
        type: 'downloads-start',
        signalingUrl: 'ws://127.0.0.1:8600/',
        directoryKeys: ['QfLbzHJk-WcX3Z_tCDbKR8eWMKr2YXRzntGSQZ42c5U'],
        mode: 'two-hop',
      },
      { target: 'offscreen', type: 'protect-stop' },
    ];
    for (const command of commands)
      await expect(deliver(command)).resolves.toMatchObject({ ok: false, code: 'bad-command' });
    expect(host.handled).toEqual([]);
  });

  it('refuses malformed commands in words, and leaves other messages to other listeners', async () => {
    const { host, deliver } = setUp();
    await expect(
      deliver({ target: 'offscreen', type: 'downloads-remove', infoHash: 'not a hash' }),
    ).resolves.toMatchObject({ ok: false, code: 'bad-command', reason: expect.stringContaining('infohash') });
    await expect(
      deliver({ target: 'offscreen', type: 'downloads-add', magnet: 'm'.repeat(100_000) }),
    ).resolves.toMatchObject({ ok: false, code: 'bad-command' });
    // The switches' requests are the background's own listener's; events and junk are nobody's.
    expect(
      deliver({ target: 'background', type: 'set-switch', name: 'downloads', on: true }),
    ).toBeUndefined();
    expect(
      deliver({ target: 'background', type: 'downloads-state', state: { status: 'off' } }),
    ).toBeUndefined();
    for (const junk of [null, 'status', 42, [], { type: 'status' }]) expect(deliver(junk)).toBeUndefined();
    expect(host.handled).toEqual([]);
  });

  it('answers only the extension’s own pages', async () => {
    const { host, deliver } = setUp();
    const status = { target: 'offscreen', type: 'status' };
    expect(deliver(status, { id: 'another@example.org', url: `${ORIGIN}x.html` })).toBeUndefined();
    expect(deliver(status, {})).toBeUndefined();
    // A script in a web page (a content script has our id but the page's URL).
    expect(deliver(status, { id: ID, url: 'https://example.org/' })).toBeUndefined();
    expect(deliver(status, { id: ID, url: 'moz-extension://another-uuid/downloads.html' })).toBeUndefined();
    expect(host.handled).toEqual([]);
    await expect(
      deliver(status, { id: ID, url: `${ORIGIN}player.html?infoHash=${INFO_HASH}&file=0` }),
    ).resolves.toMatchObject({
      ok: true,
    });
  });

  it('passes the Downloads events on to the pages, and nothing else', () => {
    const { host, sent } = setUp();
    const state: EngineEvent = { target: 'background', type: 'downloads-state', state: { status: 'off' } };
    const ready: EngineEvent = {
      target: 'background',
      type: 'downloads-file-ready',
      infoHash: INFO_HASH,
      fileIndex: 1,
      name: 'movie.webm',
      url: `blob:${ORIGIN}0b6e`,
    };
    host.say(state);
    host.say({ target: 'background', type: 'offscreen-ready' });
    host.say(ready);
    expect(sent).toEqual([state, ready]);
  });

  it('loses nothing when no page is open to hear an event', async () => {
    const { host, sent } = setUp({ noPageOpen: true });
    host.say({ target: 'background', type: 'downloads-state', state: { status: 'off' } });
    // The rejection is handled: the test run would fail on an unhandled one.
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(sent).toHaveLength(1);
  });
});
