import { ProtectEngine, type PathMode } from '@underpass/shared/engines';
import type { PeerFactory } from '@underpass/shared/links';
import { ReconnectingSignaling, type ExitService } from '@underpass/shared/signaling';
import { parseDirectoryKeys } from '@underpass/shared/trust';

/** Not sooner: when a hop dies, the broker may not have heard yet and could name the dead exit again. */
export const DEFAULT_RETRY_BASE_MS = 600;
export const DEFAULT_RETRY_MAX_MS = 4_000;
/** A path whose handshake stalls is better replaced than waited for: it normally takes well under 1 s. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 3_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;

export type PathEngineOptions = {
  signalingUrl: string;
  /** The directory keys (base64url) whose certificates make an exit usable. */
  directoryKeys: readonly string[];
  mode: PathMode;
  /** Only an exit that offers this (Downloads needs `torrent`). */
  needs?: ExitService;
  WebSocket: typeof WebSocket;
  createPeer: PeerFactory;
};

/**
 * A path as the extension's features build one (Protect's, Downloads' own): the client engine with the
 * extension's timing, and a signaling client that reconnects by itself when the broker goes away (the path
 * that is up carries on; only a rebuild waits for the broker).
 */
export function createPathEngine(options: PathEngineOptions): ProtectEngine {
  const parsed = parseDirectoryKeys(options.directoryKeys.join(' '));
  return new ProtectEngine({
    // Keys that do not parse count as none: such a path trusts no exit (`untrusted-exit`), never every exit.
    directoryKeys: parsed.ok ? parsed.keys : [],
    createSignaling: () =>
      new ReconnectingSignaling({
        url: options.signalingUrl,
        WebSocket: options.WebSocket,
        hello: { role: 'client' },
      }),
    createPeer: options.createPeer,
    mode: options.mode,
    ...(options.needs ? { needs: options.needs } : {}),
    retryBaseMs: DEFAULT_RETRY_BASE_MS,
    retryMaxMs: DEFAULT_RETRY_MAX_MS,
    handshakeTimeoutMs: DEFAULT_HANDSHAKE_TIMEOUT_MS,
    connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
  });
}
