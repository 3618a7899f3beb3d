import browser from 'webextension-polyfill';
import {
  engineEventSchema,
  offscreenReplySchema,
  uiReplySchema,
  type OffscreenCommand,
  type UiRequest,
} from '../../lib/messages';
import type { SwitchError } from '../../lib/switch-error';
import { downloadsPageUrl } from './torrent-link';
import type { DownloadsEngineState } from './downloads-messages';

/**
 * How extension pages (the Downloads page, the popup's line) reach Downloads: commands straight to the engines'
 * host (every extension page hears every runtime message), the Downloads switch through the background, the
 * host's progress events, and the one Downloads tab the background and the popup bring forward.
 */

export type DownloadsCommand = Extract<
  OffscreenCommand,
  { type: `downloads-${string}` } | { type: 'status' }
>;

/** Sends a command to the engines' host; undefined when there is no host (Downloads is off). */
export async function toDownloadsHost(command: DownloadsCommand): Promise<DownloadsEngineState | undefined> {
  try {
    const reply = offscreenReplySchema.safeParse(await browser.runtime.sendMessage(command));
    return reply.success && reply.data.ok ? reply.data.status.downloads : undefined;
  } catch {
    return undefined;
  }
}

/** Turns the Downloads switch on (before adding) or off (when the list is empty). */
export async function setDownloadsSwitch(on: boolean): Promise<SwitchError | undefined> {
  const request: UiRequest = { target: 'background', type: 'set-switch', name: 'downloads', on };
  const reply = uiReplySchema.safeParse(await browser.runtime.sendMessage(request));
  if (!reply.success) return { code: 'internal', reason: 'The background sent a malformed reply.' };
  return reply.data.ok ? undefined : reply.data;
}

/** Calls `listener` with every Downloads state the engines' host announces. Returns an unsubscribe. */
export function watchDownloads(
  listener: (state: DownloadsEngineState) => void,
  onFileReady?: (file: { url: string; name: string }) => void,
): () => void {
  const onMessage = (message: unknown) => {
    const event = engineEventSchema.safeParse(message);
    if (!event.success) return;
    if (event.data.type === 'downloads-state') listener(event.data.state);
    if (event.data.type === 'downloads-file-ready') onFileReady?.(event.data);
  };
  browser.runtime.onMessage.addListener(onMessage);
  return () => browser.runtime.onMessage.removeListener(onMessage);
}

/**
 * Brings the Downloads page forward (the one already open, else a new tab beside `opener`), with `link` to add
 * when there is one. An open page gets only a new fragment: it stays loaded and adds the link.
 */
export async function openDownloadsPage(
  link?: string,
  opener?: { id?: number; index: number },
): Promise<void> {
  const page = browser.runtime.getURL('/downloads.html');
  const url = link ? downloadsPageUrl(page, link) : page;
  const [open] = await browser.tabs.query({ url: page });
  if (open?.id !== undefined) {
    await browser.tabs.update(open.id, link ? { url, active: true } : { active: true });
    if (open.windowId !== undefined) await browser.windows.update(open.windowId, { focused: true });
    return;
  }
  await browser.tabs.create({
    url,
    ...(opener
      ? { index: opener.index + 1, ...(opener.id !== undefined ? { openerTabId: opener.id } : {}) }
      : {}),
  });
}
