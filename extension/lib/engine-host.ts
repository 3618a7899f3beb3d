import { Emitter } from '@underpass/shared/emitter';
import { type PeerFactory } from '@underpass/shared/links';
import { ProtectHost } from '../features/protect/protect-host';
import { VolunteerHost } from '../features/volunteer/volunteer-host';
import type { EngineEvent, EngineStatus, OffscreenCommand } from './messages';

/**
 * The engines' host: where WebRTC exists (the offscreen document in Chrome, the background page in Firefox).
 * It hands each command to its feature's host and sends everything that happens afterwards out as `event`s.
 * `handle` answers at once with every engine's current state.
 */

export type EngineHostOptions = {
  createPeer: PeerFactory;
  WebSocket: typeof WebSocket;
};

export class EngineHost extends Emitter<{ event: [event: EngineEvent] }> {
  private readonly protect: ProtectHost;
  private readonly volunteer: VolunteerHost;

  constructor(options: EngineHostOptions) {
    super();
    const emit = (event: EngineEvent) => this.emit('event', event);
    this.protect = new ProtectHost({ ...options, emit });
    this.volunteer = new VolunteerHost({ ...options, emit });
  }

  status(): EngineStatus {
    return { protect: this.protect.state, volunteer: this.volunteer.state };
  }

  handle(command: OffscreenCommand): EngineStatus {
    switch (command.type) {
      case 'protect-start':
      case 'protect-companion':
      case 'protect-stop':
        this.protect.handle(command);
        break;
      case 'volunteer-start':
      case 'volunteer-stop':
        this.volunteer.handle(command);
        break;
      case 'status':
        break;
    }
    return this.status();
  }

  /** Stops every engine, e.g. when the document unloads. */
  shutdown(): void {
    this.protect.stop({ status: 'off' });
    this.volunteer.stop({ status: 'off' });
  }
}
