import {
  isFor,
  offscreenCommandSchema,
  PAGE_COMMAND_TYPES,
  PAGE_EVENT_TYPES,
  type EngineEvent,
  type EngineStatus,
  type OffscreenCommand,
  type OffscreenReply,
} from './messages';
import { truncateReason } from './switch-error';

/**
 * Firefox: the engines' host lives in the background page, so it is the background page that answers the
 * commands extension pages send the host directly (the Downloads page, the popup's Downloads line, the player)
 * and passes the host's events on to them — what the offscreen document's own runtime messaging does in
 * Chrome, with the same schemas. Only the pages' commands are taken (`PAGE_COMMAND_TYPES`: Downloads' own and
 * `status`; starting and stopping engines stays with the background's switches), only from the extension's own
 * pages, and only the events pages listen to go out (a page is not told every Protect counter).
 */

/** Who sent a runtime message, as Firefox says (the fields read here). */
export type PageSender = { id?: string; url?: string };

/** The part of `browser.runtime` the bridge uses. */
export interface PageRuntime {
  readonly id: string;
  getURL(path: string): string;
  onMessage: {
    addListener(
      listener: (message: unknown, sender: PageSender) => Promise<OffscreenReply> | undefined,
    ): void;
  };
  sendMessage(message: EngineEvent): Promise<unknown>;
}

/** The part of the engines' host the bridge uses. */
export interface BridgedHost {
  handle(command: OffscreenCommand): EngineStatus;
  on(event: 'event', listener: (event: EngineEvent) => void): unknown;
}

const PAGE_COMMANDS: ReadonlySet<string> = new Set(PAGE_COMMAND_TYPES);
const PAGE_EVENTS: ReadonlySet<string> = new Set(PAGE_EVENT_TYPES);

export function bridgePagesToHost(options: { runtime: PageRuntime; host: BridgedHost }): void {
  const { runtime, host } = options;
  const ownPages = runtime.getURL('/');

  runtime.onMessage.addListener((message, sender) => {
    // Not ours to answer: another extension, a page of the web, or a message for the background's switches.
    if (sender.id !== runtime.id || !sender.url?.startsWith(ownPages)) return undefined;
    if (!isFor(message, 'offscreen')) return undefined;
    const parsed = offscreenCommandSchema.safeParse(message);
    if (!parsed.success)
      return Promise.resolve(badCommand(parsed.error.issues[0]?.message ?? 'malformed command'));
    if (!PAGE_COMMANDS.has(parsed.data.type))
      return Promise.resolve(badCommand(`${parsed.data.type} is not a command pages may send`));
    return Promise.resolve({ ok: true, status: host.handle(parsed.data) });
  });

  host.on('event', (event) => {
    if (!PAGE_EVENTS.has(event.type)) return;
    runtime.sendMessage(event).catch(() => {
      // No extension page is open to hear it ("Receiving end does not exist"): nothing is lost, a page asks
      // for `status` when it opens.
    });
  });
}

function badCommand(reason: string): OffscreenReply {
  return { ok: false, code: 'bad-command', reason: truncateReason(reason) };
}
