import type { SwitchState } from '../../lib/messages';

/**
 * Whether Protect keeps new people from this relay. In Firefox the WebRTC policy Protect holds strict while its
 * path is up (`proxy_only`, lib/proxy-control.ts) binds the add-on's own background page too: links already
 * connected keep working, a new one cannot connect. No looser setting keeps pages from revealing the address, so
 * while Protect is on the relay takes no new people (they go to other volunteers) and the popup says why. Chrome's
 * policy binds pages only.
 */
export function newClientsHeldByProtect(firefox: boolean, protect: SwitchState): boolean {
  return firefox && protect.status === 'on';
}
