import { Emitter } from '@underpass/shared/emitter';
import type { Clock } from '@underpass/shared/clock';
import { type PeerFactory } from '@underpass/shared/links';
import { DownloadsHost } from '../features/downloads/downloads-host';
import { ProtectHost } from '../features/protect/protect-host';
import { VolunteerHost } from '../features/volunteer/volunteer-host';
import type { ConditionSource } from '../features/volunteer/volunteer-pause-watch';
import type { EngineEvent, EngineStatus, OffscreenCommand, SwitchName } from './messages';

/**
 * The engines' host: where WebRTC exists (the offscreen document in Chrome, the background page in Firefox).
 * It hands each command to its feature's host and sends everything that happens afterwards out as `event`s.
 * `handle` answers at once with every engine's current state.
 */

export type EngineHostOptions = {
  createPeer: PeerFactory;
  WebSocket: typeof WebSocket;
  /** What the browser tells about battery and network (Volunteer's pause). */
  conditions: () => Promise<ConditionSource>;
  /** Injected for tests: the clock of every part that takes one. */
  clock?: Clock;
  /**
   * Downloads ride Protect's path while Protect is on, instead of building their own (Firefox, whose WebRTC
   * policy binds our own new links then: features/downloads/downloads-route.ts).
   */
  sharesProtectPath?: boolean;
};

/** One feature's part in the engines' host. */
export interface FeatureHost<N extends SwitchName = SwitchName> {
  readonly name: N;
  readonly state: EngineStatus[N];
  /** Acts on a command addressed to this feature; false when it is another's. */
  handle(command: OffscreenCommand): boolean;
  /** Stops the engine and says off. */
  shutdown(): void;
}

export class EngineHost extends Emitter<{ event: [event: EngineEvent] }> {
  private readonly protect: ProtectHost;
  private readonly volunteer: VolunteerHost;
  private readonly downloads: DownloadsHost;
  private readonly hosts: readonly FeatureHost[];

  constructor(options: EngineHostOptions) {
    super();
    const emit = (event: EngineEvent) => this.emit('event', event);
    const protectEmit = (event: EngineEvent) => {
      emit(event);
      // Downloads follow Protect's run: they ride its path, or leave it (downloads-route.ts).
      if (event.type === 'protect-state') this.downloads.protectChanged();
    };
    this.protect = new ProtectHost({ ...options, emit: protectEmit });
    this.volunteer = new VolunteerHost({ ...options, emit });
    this.downloads = new DownloadsHost({
      ...options,
      emit,
      ...(options.sharesProtectPath ? { protectRun: () => this.protect.runView } : {}),
    });
    // The one list of the features' hosts: a new feature adds its host here.
    this.hosts = [this.protect, this.volunteer, this.downloads];
  }

  status(): EngineStatus {
    return {
      protect: this.protect.state,
      volunteer: this.volunteer.state,
      downloads: this.downloads.state,
    };
  }

  handle(command: OffscreenCommand): EngineStatus {
    this.hosts.some((host) => host.handle(command));
    return this.status();
  }

  /** Stops every engine, e.g. when the document unloads. */
  shutdown(): void {
    for (const host of this.hosts) host.shutdown();
  }
}
