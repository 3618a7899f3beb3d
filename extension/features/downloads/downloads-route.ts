import type { PathServiceState, ProtectState } from '@underpass/shared/engines';
import { truncateReason } from '../../lib/switch-error';
import type { ProtectEngineState } from '../protect/protect-messages';
import type { DownloadsPath } from './downloads-messages';

/**
 * Which path Downloads' torrent streams take, and what the page says of it while they share Protect's.
 *
 * Firefox: while Protect is on, the add-on holds `privacy.network.webRTCIPHandlingPolicy` at `proxy_only` (so
 * pages reveal no address over WebRTC), and in Firefox that binds the background page's own new links too
 * (extension/README.md, "WebRTC leaks"): Downloads' own path could not connect. So there, from the moment
 * Protect is turned on until it is off, Downloads ride Protect's path: a session of their own over Protect's
 * link, to Protect's exit, checked for torrents (ProtectEngine.want, PathService), and Protect asks the broker
 * for an exit that also serves torrents. No new link is made for them. Once Protect is off (or failed), they
 * build their own path again. Each move closes the torrents' wires; ExitPeer opens them again on the new path,
 * and WebTorrent keeps every verified piece.
 *
 * Chrome: its policy spares the extension's own links, so Downloads keep their own path (and their own exit,
 * which sees none of the user's pages) whatever Protect does.
 */

export type DownloadsRoute = 'own' | 'protect';

export function downloadsRoute(input: {
  /** The platform's WebRTC policy binds our own new links while Protect is on (Firefox). */
  sharesProtectPath: boolean;
  /** Protect's engine as its host reports it; `off` while no Protect run exists. */
  protect: ProtectEngineState['status'];
}): DownloadsRoute {
  if (!input.sharesProtectPath) return 'own';
  switch (input.protect) {
    case 'connecting':
    case 'reconnecting':
    case 'protected':
      return 'protect';
    case 'off':
    case 'error':
      return 'own';
  }
}

/** Downloads' path as the page shows it while they ride Protect's. */
export function sharedPathOf(protect: ProtectState, service: PathServiceState): DownloadsPath {
  switch (protect.status) {
    case 'off':
    case 'connecting':
      return { status: 'connecting' };
    case 'reconnecting':
      return { status: 'reconnecting', reason: truncateReason(protect.reason) };
    case 'error':
      return { status: 'failed', code: 'downloads-failed', reason: truncateReason(protect.reason) };
    case 'protected':
      switch (service.status) {
        case 'ready':
          return { status: 'ready', exitPeerId: protect.path.exit.peerId, sharesProtect: true };
        case 'lacking':
          return {
            status: 'failed',
            code: 'no-torrent-exit',
            reason:
              "No exit serves torrents right now; Protect's path is asked for one whenever it is rebuilt.",
          };
        case 'none':
        case 'opening':
          return { status: 'connecting' };
      }
  }
}
