import type { EngineEvent, OffscreenCommand, OffscreenReply } from './messages';

/**
 * How the background reaches the engines: the offscreen document in Chrome (runtime messages), the same
 * page in Firefox (direct calls). The background's logic is written once against this.
 */
export interface EngineChannel {
  /** Delivers a command, creating the engines' host first when `create` is set. */
  send(command: OffscreenCommand, options: { create: boolean }): Promise<OffscreenReply>;
  /** Lets the host go when nothing runs in it any more (Chrome closes the offscreen document). */
  release(): Promise<void>;
  onEvent(listener: (event: EngineEvent) => void): void;
}
