import type { SwitchState } from '../../lib/messages';
import type { DownloadsPath } from './downloads-messages';

/**
 * Firefox: while Protect is on, the add-on sets `privacy.network.webRTCIPHandlingPolicy` to `proxy_only` so that
 * pages reveal no address over WebRTC, and in Firefox that policy binds the background page's own new links too
 * (extension/README.md, "WebRTC leaks"). Downloads' path is such a link: it cannot be built until Protect is off
 * (measured in ESR 153: the path fails with "the peer closed before connecting", and the download goes on by
 * itself a few seconds after Protect goes off). The page says so instead of a bare failure. Chrome's policy
 * spares the extension's own links, and while Protect rebuilds its path the looser policy lets new links connect.
 */
export function protectHoldsDownloads(input: {
  firefox: boolean;
  protect: SwitchState;
  path: DownloadsPath;
}): boolean {
  return input.firefox && input.protect.status === 'on' && input.path.status !== 'ready';
}
