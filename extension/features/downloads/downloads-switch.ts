import type { EngineChannel } from '../../lib/engine-channel';
import { SwitchBase, type FeatureSwitch, type ResumeInput } from '../../lib/feature-switch';
import type { EngineEvent, SwitchName, SwitchState } from '../../lib/messages';
import type { Settings } from '../../lib/settings';
import { summarizeDownloads } from './downloads-summary';

/**
 * Downloads, as the background runs it: on while the Downloads page has torrents listed (the page turns it
 * on before its first magnet and off when its list is empty). Its one job here is the engines' host's
 * lifetime: the runner closes the offscreen document when no switch runs, which would drop every download.
 * The downloads themselves live in the engines' host, and the page talks to it directly.
 */

export type DownloadsStore = {
  loadSettings(): Promise<Settings>;
  saveSwitchState(name: SwitchName, state: SwitchState): Promise<void>;
};

export type DownloadsSwitchOptions = {
  channel: EngineChannel;
  store: DownloadsStore;
};

export class DownloadsSwitch extends SwitchBase implements FeatureSwitch {
  readonly name = 'downloads';
  private active = false;
  private activeCount = 0;

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
    const reply = await this.options.channel.send(
      {
        target: 'offscreen',
        type: 'downloads-start',
        signalingUrl: settings.signalingUrl,
        mode: settings.mode,
      },
      { create: true },
    );
    if (!this.active) return;
    if (!reply.ok) return this.stop({ status: 'error', code: reply.code, reason: reply.reason });
    await this.setState({ status: 'on' });
  }

  async stop(final: SwitchState): Promise<void> {
    this.active = false;
    await this.options.channel.send({ target: 'offscreen', type: 'downloads-stop' }, { create: false });
    await this.setState(final);
  }

  async resume({ wanted, engines }: ResumeInput): Promise<void> {
    const running = engines?.downloads.status === 'on';
    if (wanted && running) {
      // The downloads outlived the worker in the engines' host (an MV3 worker sleeps when idle): keep them.
      this.active = true;
      await this.setState({ status: 'on' });
      return;
    }
    // Downloads do not survive the engines' host yet (a browser restart): nothing to come back to.
    if (running)
      await this.options.channel.send({ target: 'offscreen', type: 'downloads-stop' }, { create: false });
    await this.setState({ status: 'off' });
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
