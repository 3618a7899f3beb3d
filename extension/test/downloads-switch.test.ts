import { describe, expect, it } from 'vitest';
import { DownloadsSwitch } from '../features/downloads/downloads-switch';
import type { DownloadsEngineState } from '../features/downloads/downloads-messages';
import type { EngineChannel } from '../lib/engine-channel';
import type { EngineStatus, OffscreenCommand, SwitchName, SwitchState } from '../lib/messages';
import { SerialQueue } from '../lib/serial-queue';
import { DEFAULT_DIRECTORY_KEYS, DEFAULT_SETTINGS } from '../lib/settings';
import { SwitchRunner } from '../lib/switch-runner';

/**
 * The Downloads switch through the runner, around a recording engines' host: it exists so the runner keeps
 * the engines' host (the offscreen document) while torrents are listed, and lets it go when they are not.
 */

function harness(
  options: {
    downloads?: DownloadsEngineState;
    wanted?: boolean;
    /** Downloads in the saved list (what survives a browser restart). */
    saved?: number;
    stored?: SwitchState;
  } = {},
) {
  const commands: OffscreenCommand[] = [];
  let releases = 0;
  const status: EngineStatus = {
    protect: { status: 'off' },
    volunteer: { status: 'off' },
    downloads: options.downloads ?? { status: 'off' },
  };
  const channel: EngineChannel = {
    async send(command) {
      commands.push(command);
      return { ok: true, status };
    },
    async release() {
      releases += 1;
    },
    onEvent() {},
  };
  const states: SwitchState[] = [];
  const store = {
    loadSettings: async () => ({
      ...DEFAULT_SETTINGS,
      signalingUrl: 'ws://127.0.0.1:9/',
      mode: 'direct' as const,
    }),
    saveSwitchState: async (_name: SwitchName, state: SwitchState) => {
      states.push(state);
    },
    loadWanted: async () => ({ protect: false, volunteer: false, downloads: options.wanted ?? false }),
    saveWanted: async () => {},
    loadSwitchState: async () => states.at(-1) ?? options.stored ?? ({ status: 'off' } as const),
  };
  const downloads = new DownloadsSwitch({ channel, store, saved: { count: async () => options.saved ?? 0 } });
  const runner = new SwitchRunner({ switches: [downloads], channel, store, queue: new SerialQueue() });
  return { runner, downloads, commands, states, releases: () => releases };
}

describe('DownloadsSwitch', () => {
  it("starts the engines' host with the settings' signaling server and mode, and keeps it while on", async () => {
    const h = harness();
    expect(await h.runner.setSwitch('downloads', true)).toEqual({ ok: true });
    expect(h.commands).toEqual([
      {
        target: 'offscreen',
        type: 'downloads-start',
        signalingUrl: 'ws://127.0.0.1:9/',
        directoryKeys: DEFAULT_DIRECTORY_KEYS,
        mode: 'direct',
      },
    ]);
    expect(h.downloads.state).toEqual({ status: 'on' });
    expect(h.downloads.running).toBe(true);
    expect(h.releases()).toBe(0);
  });

  it("stops the downloads and lets the engines' host go when turned off", async () => {
    const h = harness();
    await h.runner.setSwitch('downloads', true);
    await h.runner.setSwitch('downloads', false);
    expect(h.commands.map((c) => c.type)).toEqual(['downloads-start', 'downloads-stop']);
    expect(h.downloads.state).toEqual({ status: 'off' });
    expect(h.releases()).toBe(1);
  });

  it("adopts downloads that outlived the worker in the engines' host", async () => {
    const h = harness({
      wanted: true,
      downloads: { status: 'on', path: { status: 'connecting' }, torrents: [] },
    });
    await h.runner.resume();
    expect(h.commands.map((c) => c.type)).toEqual(['status']);
    expect(h.downloads.running).toBe(true);
    expect(h.releases()).toBe(0);
  });

  it("comes back off when the engines' host is gone and nothing is saved", async () => {
    const h = harness({ wanted: true, saved: 0 });
    await h.runner.resume();
    expect(h.commands.map((c) => c.type)).toEqual(['status']);
    expect(h.downloads.state).toEqual({ status: 'off' });
    expect(h.downloads.running).toBe(false);
    expect(h.releases()).toBe(1);
  });

  it('counts the torrents still working for the badge, announces changes, and counts none once off', async () => {
    const h = harness();
    await h.runner.setSwitch('downloads', true);
    let changes = 0;
    h.downloads.on('change', () => (changes += 1));
    const row = (infoHash: string, status: 'downloading' | 'paused' | 'metadata') => ({
      infoHash: infoHash.repeat(40),
      name: infoHash,
      length: 0,
      downloaded: 0,
      remaining: 0,
      downloadSpeed: 0,
      peers: 0,
      state: { status },
      files: [],
    });
    const event = (torrents: ReturnType<typeof row>[]) => ({
      target: 'background' as const,
      type: 'downloads-state' as const,
      state: { status: 'on' as const, path: { status: 'connecting' as const }, torrents },
    });
    await h.downloads.onEngineEvent(
      event([row('a', 'downloading'), row('b', 'metadata'), row('c', 'paused')]),
    );
    expect(h.downloads.activeDownloads).toBe(2);
    expect(changes).toBe(1);
    await h.downloads.onEngineEvent(event([row('a', 'downloading'), row('b', 'downloading')]));
    expect(changes).toBe(1); // still two: nothing to redraw
    await h.runner.setSwitch('downloads', false);
    expect(h.downloads.activeDownloads).toBe(0);
  });

  it('brings Downloads back after a browser restart when the saved list is not empty', async () => {
    const h = harness({ wanted: true, saved: 2 });
    await h.runner.resume();
    expect(h.commands).toEqual([
      { target: 'offscreen', type: 'status' },
      {
        target: 'offscreen',
        type: 'downloads-start',
        signalingUrl: 'ws://127.0.0.1:9/',
        directoryKeys: DEFAULT_DIRECTORY_KEYS,
        mode: 'direct',
      },
    ]);
    expect(h.downloads.state).toEqual({ status: 'on' });
    expect(h.downloads.running).toBe(true);
    expect(h.releases()).toBe(0);
  });

  it('stays off when the user had turned it off, saved downloads or not', async () => {
    const h = harness({ wanted: false, saved: 2 });
    await h.runner.resume();
    expect(h.commands.map((c) => c.type)).toEqual(['status']);
    expect(h.downloads.running).toBe(false);
  });

  it('keeps an error until the user acts (no retry behind their back)', async () => {
    const stored = {
      status: 'error',
      code: 'engine-host-lost',
      reason: 'The WebRTC engines stopped.',
    } as const;
    const h = harness({ wanted: true, saved: 1, stored });
    await h.runner.resume();
    expect(h.commands.map((c) => c.type)).toEqual(['status']);
    expect(h.downloads.state).toEqual(stored);
    expect(h.downloads.running).toBe(false);
  });

  it('starts the engines’ host again when its path settings change, and not for other settings', async () => {
    const h = harness();
    await h.runner.setSwitch('downloads', true);
    const base = { ...DEFAULT_SETTINGS, signalingUrl: 'ws://127.0.0.1:9/', mode: 'direct' as const };
    await h.runner.settingsChanged({ ...base, volunteerCapacity: 9 });
    expect(h.commands.map((c) => c.type)).toEqual(['downloads-start']);
    await h.runner.settingsChanged({ ...base, mode: 'two-hop' });
    expect(h.commands.map((c) => c.type)).toEqual(['downloads-start', 'downloads-stop', 'downloads-start']);
    expect(h.commands.at(-1)).toMatchObject({ mode: 'two-hop', signalingUrl: 'ws://127.0.0.1:9/' });
    expect(h.downloads.state).toEqual({ status: 'on' });
    await h.runner.setSwitch('downloads', false);
    await h.runner.settingsChanged({ ...base, mode: 'direct' });
    expect(h.commands.at(-1)?.type).toBe('downloads-stop');
  });
});
