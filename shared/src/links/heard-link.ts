import { Emitter } from '../emitter.js';
import { SessionError } from '../errors.js';
import type { LinkEvents } from './link.js';

/** Far more than the handful a peer sends before its first answer; a flood beyond it closes the link. */
const MAX_UNHEARD_MESSAGES = 256;

/**
 * The base of a link that must not lose what arrives before anyone listens: the far end sends its first cell the
 * moment the channel opens, while our engine attaches to the link a tick after it is handed over (without this,
 * that cell was lost). Such messages are held, bounded, and handed in order to the first `message` listener.
 */
export abstract class HeardLink extends Emitter<LinkEvents> {
  private readonly unheard: Uint8Array[] = [];

  abstract get closed(): boolean;
  abstract close(error?: SessionError): void;

  override on<K extends keyof LinkEvents>(event: K, listener: (...args: LinkEvents[K]) => void): this {
    super.on(event, listener);
    if (event === 'message') {
      for (const message of this.unheard.splice(0)) if (!this.closed) this.emit('message', message);
    }
    return this;
  }

  /** A message for the link's reader: now, or held until one listens. */
  protected deliver(message: Uint8Array): void {
    if (this.listenerCount('message') > 0) this.emit('message', message);
    else if (this.unheard.length < MAX_UNHEARD_MESSAGES) this.unheard.push(message);
    else this.close(new SessionError('link-closed', 'messages arrived with no one listening'));
  }
}
