import {
  Emitter,
  SignalingClient,
  ProtectEngine,
  VolunteerEngine,
  bridgeCompanion,
  websocketLink,
} from '@underpass/shared';
import type { PeerFactory, ProtectState, VolunteerStats } from '@underpass/shared';
import { openCompanionSocket } from './companion-socket';
import {
  truncateReason,
  type EngineEvent,
  type EngineStatus,
  type OffscreenCommand,
  type ProtectEngineState,
  type VolunteerEngineState,
  type VolunteerStatsWire,
} from './messages';

/**
 * Hosts the client (Protect) and relay (Volunteer) engines where WebRTC exists: the offscreen document in
 * Chrome, the background page in Firefox. Commands come in through `handle`; everything that happens
 * afterwards goes out as `event`s. `handle` never waits for a path to be built: it answers with the
 * current state at once and reports progress as events, so a slow signaling server cannot stall the worker.
 */

export const PROTECT_STATS_INTERVAL_MS = 2_000;
/** Relay counters change on every cell; the popup needs a few updates a second at most. */
export const VOLUNTEER_STATS_INTERVAL_MS = 500;

/** The companion's close code for a wrong, missing or late hello (companion/src/data-port.ts). */
const COMPANION_UNAUTHORIZED = 4401;

export type EngineHostOptions = {
  createPeer: PeerFactory;
  WebSocket: typeof WebSocket;
};

type EngineHostEvents = { event: [event: EngineEvent] };

/** Callbacks compare their run with the current one, so an older run can never touch a newer one. */
type ProtectRun = {
  engine?: ProtectEngine;
  socket?: WebSocket;
  bridge?: { close(): void };
  statsTimer?: ReturnType<typeof setInterval>;
};

type VolunteerRun = {
  engine: VolunteerEngine;
  lastSent?: VolunteerStatsWire;
  statsTimer?: ReturnType<typeof setInterval>;
};

export class EngineHost extends Emitter<EngineHostEvents> {
  private protectState: ProtectEngineState = { status: 'off' };
  private volunteerState: VolunteerEngineState = { status: 'off' };
  private protectRun: ProtectRun | undefined;
  private volunteerRun: VolunteerRun | undefined;

  constructor(private readonly options: EngineHostOptions) {
    super();
  }

  status(): EngineStatus {
    return { protect: this.protectState, volunteer: this.volunteerState };
  }

  handle(command: OffscreenCommand): EngineStatus {
    switch (command.type) {
      case 'protect-start':
        this.startProtect(command);
        break;
      case 'protect-companion':
        if (this.protectRun) void this.attachCompanion(this.protectRun, command.companion);
        break;
      case 'protect-stop':
        this.stopProtect({ status: 'off' });
        break;
      case 'volunteer-start':
        void this.startVolunteer(command);
        break;
      case 'volunteer-stop':
        this.stopVolunteer({ status: 'off' });
        break;
      case 'status':
        break;
    }
    return this.status();
  }

  /** Stops both engines, e.g. when the document unloads. */
  shutdown(): void {
    this.stopProtect({ status: 'off' });
    this.stopVolunteer({ status: 'off' });
  }

  // ── Protect ──────────────────────────────────────────────────────────────────────────────────────────

  /**
   * Starts building the path at once; the companion's data socket is attached when the command names it,
   * or later (`protect-companion`) while the companion is still starting: the two take about as long.
   */
  private startProtect(command: Extract<OffscreenCommand, { type: 'protect-start' }>): void {
    this.stopProtect(undefined);
    const run: ProtectRun = {};
    this.protectRun = run;
    this.setProtectState({ status: 'connecting' });

    const engine = new ProtectEngine({
      // A fresh client for every rebuild after the broker's socket dropped: a closed one cannot reconnect.
      createSignaling: () =>
        new SignalingClient({
          url: command.signalingUrl,
          WebSocket: this.options.WebSocket,
          hello: { role: 'client' },
        }),
      createPeer: this.options.createPeer,
      mode: command.mode,
      // Not sooner: when a hop dies, the broker may not have heard yet and could name the dead exit again.
      retryBaseMs: 600,
      retryMaxMs: 4_000,
      // A path whose handshake stalls is better replaced than waited for: it normally takes well under 1 s.
      handshakeTimeoutMs: 3_000,
      connectTimeoutMs: 15_000,
    });
    run.engine = engine;
    engine.on('state', (state: ProtectState) => {
      if (this.protectRun !== run) return;
      this.setProtectState(protectStateToWire(state));
      this.sendProtectStats(engine);
    });
    run.statsTimer = setInterval(() => {
      if (this.protectRun === run) this.sendProtectStats(engine);
    }, PROTECT_STATS_INTERVAL_MS);
    engine.start().catch((error: unknown) => {
      if (this.protectRun !== run) return;
      this.stopProtect({ status: 'error', ...errorInfo(error, 'protect-failed') });
    });
    if (command.companion) void this.attachCompanion(run, command.companion);
  }

  /** Joins the companion's data socket to the tunnel: each browser connection becomes a tunnel stream. */
  private async attachCompanion(
    run: ProtectRun,
    target: { dataPort: number; secret: string },
  ): Promise<void> {
    if (run.socket || !run.engine) return;
    const engine = run.engine;
    const companion = await openCompanionSocket({
      WebSocket: this.options.WebSocket,
      dataPort: target.dataPort,
      secret: target.secret,
    });
    if (this.protectRun !== run || run.socket) {
      if (companion.ok) companion.socket.close();
      return;
    }
    if (!companion.ok) {
      this.stopProtect({ status: 'error', code: companion.code, message: companion.message });
      return;
    }
    run.socket = companion.socket;
    companion.socket.addEventListener('close', (event: CloseEvent) => {
      if (this.protectRun !== run) return;
      this.stopProtect(
        event.code === COMPANION_UNAUTHORIZED
          ? {
              status: 'error',
              code: 'companion-unauthorized',
              message: 'The companion refused our secret.',
            }
          : {
              status: 'error',
              code: 'companion-closed',
              message: 'The connection to the companion closed. Turn Protect off and on to restart it.',
            },
      );
    });
    run.bridge = bridgeCompanion({
      link: websocketLink(companion.socket),
      open: (request) => {
        const opened = engine.open(request);
        // A refusal is the kill switch at work: the popup shows the count at once, not at the next tick.
        opened.catch(() => {
          if (this.protectRun === run && engine.state.status !== 'protected') this.sendProtectStats(engine);
        });
        return opened;
      },
    });
  }

  private sendProtectStats(engine: ProtectEngine): void {
    this.emit('event', { target: 'background', type: 'protect-stats', stats: engine.stats() });
  }

  /** Tears the current Protect run down and reports `final` (nothing when a new run replaces it). */
  private stopProtect(final: ProtectEngineState | undefined): void {
    const run = this.protectRun;
    this.protectRun = undefined;
    if (run) {
      if (run.statsTimer) clearInterval(run.statsTimer);
      safely(() => run.bridge?.close());
      safely(() => run.engine?.stop());
      safely(() => run.socket?.close());
    }
    if (final) this.setProtectState(final);
  }

  private setProtectState(state: ProtectEngineState): void {
    this.protectState = state;
    this.emit('event', { target: 'background', type: 'protect-state', state });
  }

  // ── Volunteer ────────────────────────────────────────────────────────────────────────────────────────

  private async startVolunteer(
    command: Extract<OffscreenCommand, { type: 'volunteer-start' }>,
  ): Promise<void> {
    this.stopVolunteer(undefined);
    const signaling = new SignalingClient({
      url: command.signalingUrl,
      WebSocket: this.options.WebSocket,
      hello: { role: 'relay', capacity: command.capacity },
    });
    const engine = new VolunteerEngine({
      signaling,
      createPeer: this.options.createPeer,
      capacity: command.capacity,
      ...(command.bandwidthBytesPerSec > 0 ? { bandwidthBytesPerSec: command.bandwidthBytesPerSec } : {}),
    });
    const run: VolunteerRun = { engine };
    this.volunteerRun = run;
    this.setVolunteerState({ status: 'connecting' });
    // One client's link failing is that client's problem; the relay keeps serving the others.
    engine.on('error', (error) => console.warn('underpass: a client link failed', error.code, error.message));
    signaling.on('close', (error) => {
      if (this.volunteerRun !== run) return;
      this.stopVolunteer({
        status: 'error',
        code: error?.code ?? 'signaling-closed',
        message: truncateReason(`Lost the signaling server: ${error?.message ?? 'the connection closed'}`),
      });
    });
    // Polled rather than pushed: the relay counts bytes on every cell but announces only links coming and going.
    run.statsTimer = setInterval(() => {
      if (this.volunteerRun !== run) return;
      const stats = toVolunteerStatsWire(engine.stats());
      if (run.lastSent && sameStats(run.lastSent, stats)) return;
      run.lastSent = stats;
      this.emit('event', { target: 'background', type: 'volunteer-stats', stats });
    }, VOLUNTEER_STATS_INTERVAL_MS);
    try {
      await engine.start();
      if (this.volunteerRun === run) this.setVolunteerState({ status: 'on' });
    } catch (error) {
      if (this.volunteerRun !== run) return;
      this.stopVolunteer({ status: 'error', ...errorInfo(error, 'volunteer-failed') });
    }
  }

  private stopVolunteer(final: VolunteerEngineState | undefined): void {
    const run = this.volunteerRun;
    this.volunteerRun = undefined;
    if (run) {
      if (run.statsTimer) clearInterval(run.statsTimer);
      safely(() => run.engine.stop());
    }
    if (final) this.setVolunteerState(final);
  }

  private setVolunteerState(state: VolunteerEngineState): void {
    this.volunteerState = state;
    this.emit('event', { target: 'background', type: 'volunteer-state', state });
  }
}

/** A plain-data copy of the engine's state (the engine's object may carry class instances). */
export function protectStateToWire(state: ProtectState): ProtectEngineState {
  switch (state.status) {
    case 'off':
    case 'connecting':
      return { status: state.status };
    case 'reconnecting':
      return { status: 'reconnecting', message: truncateReason(state.reason) };
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
      return { status: 'error', code: state.code.slice(0, 64), message: truncateReason(state.message) };
  }
}

function toVolunteerStatsWire(stats: VolunteerStats): VolunteerStatsWire {
  return {
    clientsNow: stats.clientsNow,
    circuitsTotal: stats.circuitsTotal,
    bytesFromClients: stats.bytesFromClients,
    bytesToClients: stats.bytesToClients,
    helped24h: stats.helped24h,
    capacity: stats.capacity,
  };
}

function sameStats(a: VolunteerStatsWire, b: VolunteerStatsWire): boolean {
  return (
    a.clientsNow === b.clientsNow &&
    a.circuitsTotal === b.circuitsTotal &&
    a.bytesFromClients === b.bytesFromClients &&
    a.bytesToClients === b.bytesToClients &&
    a.helped24h === b.helped24h
  );
}

function errorInfo(error: unknown, fallbackCode: string): { code: string; message: string } {
  const code =
    typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
      ? error.code.slice(0, 64)
      : fallbackCode;
  const message = error instanceof Error ? error.message : String(error);
  return { code, message: truncateReason(message || code) };
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    console.warn('underpass: cleanup failed', error);
  }
}
