import { bridgeCompanion, DataPortCloseCode } from '@underpass/shared/data-port';
import type { ProtectEngine, ProtectState } from '@underpass/shared/engines';
import { websocketLink, type PeerFactory } from '@underpass/shared/links';
import { openCompanionSocket } from '../../lib/companion-socket';
import { createPathEngine } from '../../lib/path-engine';
import { safely } from '../../lib/safely';
import type { FeatureHost } from '../../lib/engine-host';
import type { EngineEvent, OffscreenCommand } from '../../lib/messages';
import { switchError, toSwitchError, truncateReason, type SwitchError } from '../../lib/switch-error';
import type { CompanionTarget, ProtectEngineState } from './protect-messages';

/**
 * Protect in the engines' host (the offscreen document in Chrome, the background page in Firefox): runs the
 * client engine, joins the companion's data socket to it, and reports the engine's state and counters to the
 * background. It never waits for a path: commands return at once and progress goes out as events, so a slow
 * signaling server cannot stall the worker.
 */

export const PROTECT_STATS_INTERVAL_MS = 2_000;

export type ProtectHostOptions = {
  createPeer: PeerFactory;
  WebSocket: typeof WebSocket;
  emit: (event: EngineEvent) => void;
};

/** One run of Protect, from start to stop: callbacks check it is still the current one. */
type ProtectRun = {
  engine: ProtectEngine;
  statsTimer: ReturnType<typeof setInterval>;
  socket?: WebSocket;
  bridge?: { close(): void };
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
      safely(() => run.bridge?.close());
      safely(() => run.engine.stop());
      safely(() => run.socket?.close());
    }
    if (final) this.setState(final);
  }

  private start(command: Extract<OffscreenCommand, { type: 'protect-start' }>): void {
    this.stop(undefined);
    const engine = createPathEngine({
      signalingUrl: command.signalingUrl,
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

  /** Joins the companion's data socket to the tunnel: each browser connection becomes a tunnel stream. */
  private async attachCompanion(run: ProtectRun, target: CompanionTarget): Promise<void> {
    if (run.socket) return;
    const { engine } = run;
    const companion = await openCompanionSocket({ WebSocket: this.options.WebSocket, ...target });
    if (this.run !== run || run.socket) {
      if (companion.ok) companion.socket.close();
      return;
    }
    if (!companion.ok) return this.fail(companion);
    run.socket = companion.socket;
    companion.socket.addEventListener('close', (event: CloseEvent) => {
      if (this.run !== run) return;
      this.fail(
        event.code === DataPortCloseCode.unauthorized
          ? { code: 'companion-unauthorized', reason: 'The companion refused our secret.' }
          : {
              code: 'companion-closed',
              reason: 'The connection to the companion closed. Turn Protect off and on to restart it.',
            },
      );
    });
    run.bridge = bridgeCompanion({
      link: websocketLink(companion.socket),
      open: (request) => {
        const opened = engine.open(request);
        // A refusal is the kill switch at work: the popup shows the count at once, not at the next tick.
        opened.catch(() => {
          if (this.run === run && engine.state.status !== 'protected') this.sendStats(engine);
        });
        return opened;
      },
    });
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
      return { status: 'reconnecting', reason: truncateReason(state.reason) };
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
