import type { EngineChannel } from '../../lib/engine-channel';
import { SwitchBase, type FeatureSwitch, type ResumeInput } from '../../lib/feature-switch';
import type { EngineEvent, SwitchName, SwitchState } from '../../lib/messages';
import type { Settings } from '../../lib/settings';
import { summarizeDownloads } from './downloads-summary';
import { indexedDbSavedDownloads, type SavedDownloads } from './saved-downloads';

/**
 * Downloads, as the background runs it: on while the Downloads page has torrents listed (the page turns it
 * on before its first magnet and off when its list is empty). Its one job here is the engines' host's
 * lifetime: the runner closes the offscreen document when no switch runs, which would drop every download.
 * The downloads themselves live in the engines' host, and the page talks to it directly. At browser start
 * it brings Downloads back when the user had it on and the saved list (saved-downloads.ts, which the
 * background reads from the same IndexedDB) is not empty; the host then adds every saved torrent again.
 */

export type DownloadsStore = {
  loadSettings(): Promise<Settings>;
  saveSwitchState(name: SwitchName, state: SwitchState): Promise<void>;
};

export type DownloadsSwitchOptions = {
  channel: EngineChannel;
  store: DownloadsStore;
  /** The saved downloads list (IndexedDB by default); only its size is read here. */
  saved?: Pick<SavedDownloads, 'count'>;
};

export class DownloadsSwitch extends SwitchBase implements FeatureSwitch {
  readonly name = 'downloads';
  private active = false;
  /** The path settings the engines' host was started with. */
  private pathSettings: Pick<Settings, 'signalingUrl' | 'directoryKeys' | 'mode'> | undefined;
  private activeCount = 0;
  private defaultSaved: Pick<SavedDownloads, 'count'> | undefined;

  constructor(private readonly options: DownloadsSwitchOptions) {
    super((name, state) => options.store.saveSwitchState(name, state));
  }

  get running(): boolean {
    return this.active;
  }

  async start(): Promise<void> {
    if (this.active) return;
    this.active = true;
    const settings = await this.options.store.loadSettings();
    await this.setState({ status: 'connecting' });
    await this.startHost(settings);
  }

  /**
   * A new signaling server, mode or set of directory keys: the engines' host starts again with them. Its
   * downloads come back from the saved list, as after a browser restart (verified pieces are kept).
   */
  async applySettings(settings: Settings): Promise<void> {
    const before = this.pathSettings;
    if (!this.active || !before) return;
    if (
      before.signalingUrl === settings.signalingUrl &&
      before.mode === settings.mode &&
      before.directoryKeys.join(' ') === settings.directoryKeys.join(' ')
    )
      return;
    await this.options.channel.send({ target: 'offscreen', type: 'downloads-stop' }, { create: false });
    if (this.active) await this.startHost(settings);
  }

  private async startHost(settings: Settings): Promise<void> {
    this.pathSettings = {
      signalingUrl: settings.signalingUrl,
      directoryKeys: settings.directoryKeys,
      mode: settings.mode,
    };
    const reply = await this.options.channel.send(
      { target: 'offscreen', type: 'downloads-start', ...this.pathSettings },
      { create: true },
    );
    if (!this.active) return;
    if (!reply.ok) return this.stop({ status: 'error', code: reply.code, reason: reply.reason });
    await this.setState({ status: 'on' });
  }

  async stop(final: SwitchState): Promise<void> {
    this.active = false;
    this.pathSettings = undefined;
    await this.options.channel.send({ target: 'offscreen', type: 'downloads-stop' }, { create: false });
    await this.setState(final);
  }

  async resume({ wanted, stored, engines }: ResumeInput): Promise<void> {
    const running = engines?.downloads.status === 'on';
    if (wanted && running) {
      // The downloads outlived the worker in the engines' host (an MV3 worker sleeps when idle): keep them.
      this.active = true;
      // Started by an earlier worker with the settings stored then (a change since has already been applied).
      const settings = await this.options.store.loadSettings();
      this.pathSettings = {
        signalingUrl: settings.signalingUrl,
        directoryKeys: settings.directoryKeys,
        mode: settings.mode,
      };
      await this.setState({ status: 'on' });
      return;
    }
    if (running)
      await this.options.channel.send({ target: 'offscreen', type: 'downloads-stop' }, { create: false });
    // An error stays until the user acts (no retry loop behind their back).
    if (wanted && stored.status === 'error') return this.showStored(stored);
    // The engines' host is gone (a browser restart, a crash): the saved list brings the downloads back.
    if (wanted && (await this.savedCount()) > 0) return this.start();
    await this.setState({ status: 'off' });
  }

  /** How many downloads are saved; 0 when the list cannot be read (nothing to bring back then). */
  private async savedCount(): Promise<number> {
    try {
      return await (this.options.saved ?? (this.defaultSaved ??= indexedDbSavedDownloads())).count();
    } catch (error) {
      console.warn('underpass downloads: the saved list cannot be read:', String(error));
      return 0;
    }
  }

  /** Torrents still working, for the toolbar badge. */
  get activeDownloads(): number {
    return this.active ? this.activeCount : 0;
  }

  async onEngineEvent(event: EngineEvent): Promise<void> {
    // Progress is the page's business (the host keeps retrying its path on its own); only the badge's count
    // is kept here, and announced when it changes.
    if (event.type !== 'downloads-state') return;
    const active = summarizeDownloads(event.state).active;
    if (active === this.activeCount) return;
    this.activeCount = active;
    this.emit('change', this.state);
  }
}
