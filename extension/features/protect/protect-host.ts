import { bridgeCompanion, DataPortCloseCode } from '@underpass/shared/data-port';
import type { ProtectEngine, ProtectState } from '@underpass/shared/engines';
import { websocketLink, type PeerFactory } from '@underpass/shared/links';
import { openCompanionSocket } from '../../lib/companion-socket';
import { createPathEngine } from '../../lib/path-engine';
import { safely } from '../../lib/safely';
import type { FeatureHost } from '../../lib/engine-host';
import type { EngineEvent, OffscreenCommand } from '../../lib/messages';
import { switchError, toSwitchError, truncateReason, type SwitchError } from '../../lib/switch-error';
import type { CompanionLink, CompanionTarget, ProtectEngineState } from './protect-messages';

/**
 * Protect in the engines' host (the offscreen document in Chrome, the background page in Firefox): runs the
 * client engine, joins the companion's data socket to it, and reports the engine's state and counters to the
 * background, and whether the companion is joined: a companion that goes away does not end the path (the
 * background starts it again and sends the new one). It never waits for a path: commands return at once and progress goes out as events, so a slow
 * signaling server cannot stall the worker.
 */

export const PROTECT_STATS_INTERVAL_MS = 2_000;
/** A refused request is reported this soon (refusals that come together are reported together). */
export const PROTECT_REFUSAL_REPORT_MS = 150;

export type ProtectHostOptions = {
  createPeer: PeerFactory;
  WebSocket: typeof WebSocket;
  emit: (event: EngineEvent) => void;
};

/** The companion the run is joined to (one at a time): callbacks check it is still the current one. */
type CompanionAttachment = {
  target: CompanionTarget;
  socket?: WebSocket;
  bridge?: { close(): void };
};

/** One run of Protect, from start to stop: callbacks check it is still the current one. */
type ProtectRun = {
  engine: ProtectEngine;
  statsTimer: ReturnType<typeof setInterval>;
  /** A report of refusals already on its way. */
  refusalReport?: ReturnType<typeof setTimeout>;
  companion?: CompanionAttachment;
};

export class ProtectHost implements FeatureHost<'protect'> {
  readonly name = 'protect';
  private run: ProtectRun | undefined;
  /** What the run's engine says, or why the run ended (a failure of the host's own, e.g. the companion). */
  private current: ProtectEngineState = { status: 'off' };

  constructor(private readonly options: ProtectHostOptions) {}

  get state(): ProtectEngineState {
    return this.current;
  }

  /** The run's engine and the status reported for it, for Downloads riding its path (downloads-route.ts). */
  get runView(): { engine: ProtectEngine; status: ProtectEngineState['status'] } | undefined {
    return this.run && { engine: this.run.engine, status: this.current.status };
  }

  handle(command: OffscreenCommand): boolean {
    switch (command.type) {
      case 'protect-start':
        this.start(command);
        return true;
      case 'protect-companion':
        if (this.run) void this.attachCompanion(this.run, command.companion);
        return true;
      case 'protect-stop':
        this.stop({ status: 'off' });
        return true;
      case 'protect-new-path':
        if (this.run) this.run.engine.renew();
        return true;
      default:
        return false;
    }
  }

  shutdown(): void {
    this.stop({ status: 'off' });
  }

  /** Tears the current run down and reports `final` (nothing when a new run replaces it). */
  private stop(final: ProtectEngineState | undefined): void {
    const run = this.run;
    this.run = undefined;
    if (run) {
      clearInterval(run.statsTimer);
      clearTimeout(run.refusalReport);
      this.detachCompanion(run);
      safely(() => run.engine.stop());
    }
    if (final) this.setState(final);
  }

  private start(command: Extract<OffscreenCommand, { type: 'protect-start' }>): void {
    this.stop(undefined);
    const engine = createPathEngine({
      signalingUrl: command.signalingUrl,
      directoryKeys: command.directoryKeys,
      mode: command.mode,
      WebSocket: this.options.WebSocket,
      createPeer: this.options.createPeer,
    });
    const run: ProtectRun = {
      engine,
      statsTimer: setInterval(() => {
        if (this.run === run) this.sendStats(engine);
      }, PROTECT_STATS_INTERVAL_MS),
    };
    this.run = run;
    this.setState({ status: 'connecting' });
    engine.on('state', (state: ProtectState) => {
      if (this.run !== run) return;
      this.setState(engineStateToWire(state));
      this.sendStats(engine);
    });
    engine.start().catch((error: unknown) => {
      if (this.run === run) this.fail(toSwitchError(error, 'protect-failed'));
    });
  }

  /**
   * Joins the companion's data socket to the tunnel: each browser connection becomes a tunnel stream. A later
   * companion (one started again after a crash) replaces the one before; the path itself is not touched.
   */
  private async attachCompanion(run: ProtectRun, target: CompanionTarget): Promise<void> {
    const current = run.companion;
    if (current && current.target.dataPort === target.dataPort && current.target.secret === target.secret)
      return;
    if (current) this.detachCompanion(run);
    const attachment: CompanionAttachment = { target };
    run.companion = attachment;
    const { engine } = run;
    const opened = await openCompanionSocket({ WebSocket: this.options.WebSocket, ...target });
    if (this.run !== run || run.companion !== attachment) {
      if (opened.ok) opened.socket.close();
      return;
    }
    if (!opened.ok) {
      run.companion = undefined;
      return this.companionLost(target, opened);
    }
    const socket = opened.socket;
    attachment.socket = socket;
    socket.addEventListener('close', (event: CloseEvent) => {
      if (this.run !== run || run.companion !== attachment) return;
      this.detachCompanion(run);
      this.companionLost(
        target,
        event.code === DataPortCloseCode.unauthorized
          ? { code: 'companion-unauthorized', reason: 'The companion refused our secret.' }
          : { code: 'companion-closed', reason: 'The connection to the companion closed.' },
      );
    });
    // A refusal (the exit's, or the kill switch's) shows in the popup at once, not at the next tick.
    const reportRefusal = () => {
      if (this.run !== run || run.refusalReport !== undefined) return;
      run.refusalReport = setTimeout(() => {
        run.refusalReport = undefined;
        if (this.run === run) this.sendStats(engine);
      }, PROTECT_REFUSAL_REPORT_MS);
    };
    attachment.bridge = bridgeCompanion({
      link: websocketLink(socket),
      open: (request) => {
        const stream = engine.open(request);
        stream.catch(reportRefusal);
        return stream;
      },
      openEarly: (request) => {
        if (engine.refusedLately(request)) return undefined;
        try {
          const early = engine.openEarly(request);
          early.opened.catch(reportRefusal);
          return early;
        } catch (error) {
          reportRefusal();
          throw error;
        }
      },
    });
    this.emitLink({ status: 'joined', dataPort: target.dataPort });
  }

  /** Lets the companion go: its browser connections end; the path stays up for the next one. */
  private detachCompanion(run: ProtectRun): void {
    const attachment = run.companion;
    run.companion = undefined;
    if (!attachment) return;
    safely(() => attachment.bridge?.close());
    safely(() => attachment.socket?.close());
  }

  private companionLost(target: CompanionTarget, error: SwitchError): void {
    this.emitLink({ status: 'lost', dataPort: target.dataPort, ...error });
  }

  private emitLink(link: CompanionLink): void {
    this.options.emit({ target: 'background', type: 'protect-companion-link', link });
  }

  private fail(error: SwitchError): void {
    this.stop({ status: 'error', ...error });
  }

  private sendStats(engine: ProtectEngine): void {
    this.options.emit({ target: 'background', type: 'protect-stats', stats: engine.stats() });
  }

  private setState(state: ProtectEngineState): void {
    this.current = state;
    this.options.emit({ target: 'background', type: 'protect-state', state });
  }
}

/** A plain-data copy of the engine's state (the engine's object may carry class instances). */
export function engineStateToWire(state: ProtectState): ProtectEngineState {
  switch (state.status) {
    case 'off':
    case 'connecting':
      return { status: state.status };
    case 'reconnecting':
      return {
        status: 'reconnecting',
        reason: truncateReason(state.reason),
        ...(state.renewing ? { renewing: true } : {}),
      };
    case 'protected':
      return {
        status: 'protected',
        path: {
          mode: state.path.mode,
          ...(state.path.hop.role === 'relay' ? { relayPeerId: state.path.hop.peerId } : {}),
          exitPeerId: state.path.exit.peerId,
          exitKey: state.path.exit.exitKey,
        },
      };
    case 'error':
      return { status: 'error', ...switchError(state.code, state.reason, 'protect-failed') };
  }
}
