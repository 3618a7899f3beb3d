import type { CompanionFailure, CompanionHandle, CompanionReady } from '../../lib/companion-port';
import type { EngineChannel } from '../../lib/engine-channel';
import { SwitchBase, type FeatureSwitch, type ResumeInput } from '../../lib/feature-switch';
import type { EngineEvent, OffscreenCommand, SwitchName, SwitchState } from '../../lib/messages';
import { explainPairedFailure, PairedCompanion } from '../../lib/paired-companion';
import type { Pairing } from '@underpass/shared/data-port';
import type { ProxyControl } from '../../lib/proxy-control';
import type { SerialQueue } from '../../lib/serial-queue';
import type { Settings } from '../../lib/settings';
import { switchError, truncateReason } from '../../lib/switch-error';
import {
  EMPTY_PROTECT_INFO,
  type ProtectEngineState,
  type ProtectInfo,
  type ProtectPath,
  type ProtectStats,
  ZERO_PROTECT_STATS,
} from './protect-messages';

/**
 * Protect, as the background runs it: off → connecting → on (→ reconnecting → on), or error(reason).
 *
 * Turning it on starts two things at once, since each takes about as long: the companion (native messaging,
 * or the ports and secret of a hand-started companion the user paired) and the path, in the engines' host.
 * Once the companion is up its data socket joins the path; once the path is up the proxy points at the
 * companion. From then on the proxy stays set until the user turns Protect off, even if the path or the
 * companion breaks: pages fail rather than leak (the kill switch).
 */

export type ProtectStore = {
  loadSettings(): Promise<Settings>;
  saveSwitchState(name: SwitchName, state: SwitchState): Promise<void>;
  saveProtectInfo(info: ProtectInfo): Promise<void>;
};

export type ProtectSwitchOptions = {
  channel: EngineChannel;
  proxy: ProxyControl;
  /** Starts the companion through native messaging; used when no hand-started companion is paired. */
  createCompanion: () => CompanionHandle;
  store: ProtectStore;
  queue: SerialQueue;
};

/** One run of Protect, from on to off. */
type ProtectSession = {
  companion: CompanionHandle;
  /** Set when the companion was started by hand and paired: its failures are explained differently. */
  pairing?: Pairing;
  settings: Settings;
  ready?: CompanionReady;
  proxySet: boolean;
  path?: ProtectPath;
  stats: ProtectStats;
};

const FINDING_A_PATH: SwitchState = { status: 'connecting', detail: 'Finding a path' };

export class ProtectSwitch extends SwitchBase implements FeatureSwitch {
  readonly name = 'protect';
  private session: ProtectSession | undefined;

  constructor(private readonly options: ProtectSwitchOptions) {
    super((name, state) => options.store.saveSwitchState(name, state));
  }

  get running(): boolean {
    return this.session !== undefined;
  }

  async start(): Promise<void> {
    if (this.session) return;
    const { store, channel } = this.options;
    const settings = await store.loadSettings();
    const pairing = settings.pairing;
    await this.setState({
      status: 'connecting',
      detail: pairing ? 'Connecting to the paired companion' : 'Starting the companion',
    });
    const companion = pairing ? new PairedCompanion(pairing) : this.options.createCompanion();
    const session: ProtectSession = {
      companion,
      settings,
      proxySet: false,
      stats: ZERO_PROTECT_STATS,
      ...(pairing ? { pairing } : {}),
    };
    this.session = session;
    await store.saveProtectInfo(EMPTY_PROTECT_INFO);

    const [started, opened] = await Promise.all([
      channel.send(
        {
          target: 'offscreen',
          type: 'protect-start',
          signalingUrl: settings.signalingUrl,
          mode: settings.mode,
        },
        { create: true },
      ),
      companion.open(),
    ]);
    if (!opened.ok) return this.stop(this.failed(session, opened.failure));
    if (!started.ok) return this.stop(this.failed(session, started));
    session.ready = opened.ready;
    companion.on('closed', (failure) => {
      void this.options.queue.run(async () => {
        if (this.session === session) await this.stop(this.failed(session, failure));
      });
    });
    await this.setState(FINDING_A_PATH);
    const joined = await channel.send(
      {
        target: 'offscreen',
        type: 'protect-companion',
        companion: { dataPort: opened.ready.dataPort, secret: opened.ready.secret },
      },
      { create: false },
    );
    if (!joined.ok) await this.stop(this.failed(session, joined));
  }

  /** An error keeps the proxy if it was set (nothing goes out directly until the user turns Protect off). */
  async stop(final: SwitchState): Promise<void> {
    const session = this.session;
    this.session = undefined;
    await this.command({ target: 'offscreen', type: 'protect-stop' });
    const keepProxy = final.status === 'error' && session?.proxySet === true;
    if (!keepProxy) await this.options.proxy.clear();
    session?.companion.close();
    if (final.status === 'off') await this.options.store.saveProtectInfo(EMPTY_PROTECT_INFO);
    await this.setState(
      keepProxy && final.status === 'error'
        ? {
            ...final,
            reason: truncateReason(`${final.reason} Traffic stays blocked until you turn Protect off.`),
          }
        : final,
    );
  }

  async resume({ wanted, stored, engines }: ResumeInput): Promise<void> {
    // The companion's native port died with the previous worker: a wanted Protect is rebuilt from scratch.
    if (engines && engines.protect.status !== 'off')
      await this.command({ target: 'offscreen', type: 'protect-stop' });
    if (wanted && stored.status !== 'error') {
      await this.start();
    } else if (!wanted) {
      await this.options.proxy.clear();
      await this.setState({ status: 'off' });
    } else {
      this.showStored(stored);
    }
  }

  async onEngineEvent(event: EngineEvent): Promise<void> {
    if (event.type === 'protect-state') await this.onEngineState(event.state);
    else if (event.type === 'protect-stats' && this.session) {
      this.session.stats = event.stats;
      await this.saveInfo(this.session);
    }
  }

  private async onEngineState(state: ProtectEngineState): Promise<void> {
    const session = this.session;
    if (!session?.ready) {
      // An engine running without a session (e.g. left over from a previous worker) must not keep going.
      if (state.status !== 'off' && state.status !== 'error')
        await this.command({ target: 'offscreen', type: 'protect-stop' });
      return;
    }
    switch (state.status) {
      case 'off':
        return;
      case 'connecting':
        return this.setState(FINDING_A_PATH);
      case 'reconnecting':
        session.path = undefined;
        await this.saveInfo(session);
        // Before the first path the proxy is not set yet, so nothing is being blocked: still connecting.
        return this.setState(
          session.proxySet
            ? {
                status: 'reconnecting',
                detail: 'The path was lost. Rebuilding it; nothing goes out directly meanwhile.',
              }
            : FINDING_A_PATH,
        );
      case 'protected':
        return this.onProtected(session, session.ready, state.path);
      case 'error':
        return this.stop(this.failed(session, state));
    }
  }

  private async onProtected(
    session: ProtectSession,
    ready: CompanionReady,
    path: ProtectPath,
  ): Promise<void> {
    if (!session.proxySet) {
      const applied = await this.options.proxy.apply({
        socksPort: ready.socksPort,
        dataPort: ready.dataPort,
        signalingUrl: session.settings.signalingUrl,
        routeLoopback: session.settings.routeLoopback,
        bypassSites: session.settings.bypassSites,
      });
      if (!applied.ok) return this.stop(this.failed(session, applied));
      session.proxySet = true;
    }
    session.path = path;
    await this.saveInfo(session);
    const detail =
      path.mode === 'two-hop' && path.relayPeerId
        ? `Through relay ${shortId(path.relayPeerId)} to exit ${shortId(path.exitPeerId)}`
        : `Direct to exit ${shortId(path.exitPeerId)}`;
    await this.setState({ status: 'on', detail });
  }

  /** The error state for a failure, in the words that fit how this session's companion was started. */
  private failed(session: ProtectSession, failure: CompanionFailure): SwitchState {
    const explained = session.pairing ? explainPairedFailure(failure, session.pairing) : failure;
    return { status: 'error', ...switchError(explained.code, explained.reason) };
  }

  private async saveInfo(session: ProtectSession): Promise<void> {
    if (this.session !== session) return;
    await this.options.store.saveProtectInfo({
      stats: session.stats,
      ...(session.path ? { path: session.path } : {}),
    });
  }

  private async command(command: OffscreenCommand): Promise<void> {
    await this.options.channel.send(command, { create: false });
  }
}

function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 12)}…` : id;
}
