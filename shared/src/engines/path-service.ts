import { Emitter } from '../emitter.js';
import { StreamError, type SessionError } from '../errors.js';
import type { Link } from '../links/link.js';
import type { ExitService } from '../signaling/messages.js';
import type { ByteStream } from '../streams/byte-stream.js';
import type { StreamRequest } from '../tunnel/mux-frames.js';
import { UntrustedExitError } from '../trust/exit-trust.js';
import { TunnelClient } from './client.js';

/**
 * What a path offers another feature (ProtectEngine.want): a session of its own, over the path's first-hop link,
 * to the path's exit, for a service the path's own session was not checked for (`torrent`).
 */
export type PathServiceState =
  /** Not wanted, or no path is up. */
  | { status: 'none' }
  /** The session to the path's exit is being set up. */
  | { status: 'opening' }
  | { status: 'ready' }
  /** The path's exit does not offer the service: its certificate does not say so. */
  | { status: 'lacking'; reason: string };

export interface PathServiceOptions {
  /** The path's first hop (a relay, or the exit itself in direct mode); shared with the path's own session. */
  link: Link;
  exitKey: Uint8Array;
  needs: ExitService;
  directoryKeys: readonly Uint8Array[];
  /** A circuit id not used on `link` before (the path's own session has 1). */
  circuitId: number;
  handshakeTimeoutMs?: number;
}

export type PathServiceEvents = { state: [state: PathServiceState] };

/**
 * One session for a service over an existing path: a second circuit on the path's link, to the same exit, whose
 * certificate is checked for the service (`needs`), so a path built for pages carries a feature's streams
 * without a new link (PROTOCOL.md §2, Cells: a link may carry several circuits, each to an exit of its own).
 * It has its own flow-control windows and counters, so the feature's bulk neither starves the path's pages
 * nor shows in their figures. It ends with the link, or when closed; it is never rebuilt (a new one is made).
 */
export class PathService extends Emitter<PathServiceEvents> {
  private readonly tunnel: TunnelClient;
  private current: PathServiceState = { status: 'opening' };

  constructor(options: PathServiceOptions) {
    super();
    this.tunnel = new TunnelClient({
      link: options.link,
      exitKey: options.exitKey,
      circuitId: options.circuitId,
      trust: { directoryKeys: options.directoryKeys, needs: options.needs },
      ...(options.handshakeTimeoutMs ? { handshakeTimeoutMs: options.handshakeTimeoutMs } : {}),
    });
    this.tunnel.ready().then(
      () => {
        if (this.current.status === 'opening') this.setState({ status: 'ready' });
      },
      () => {}, // the close below says why
    );
    this.tunnel.once('close', (error?: SessionError) => this.setState(stateAfterClose(error)));
  }

  get state(): PathServiceState {
    return this.current;
  }

  /** True once it can carry nothing more (closed, or the exit lacks the service). */
  get closed(): boolean {
    return this.tunnel.closed;
  }

  open(request: StreamRequest): Promise<ByteStream> {
    if (this.current.status === 'lacking')
      return Promise.reject(new StreamError('torrents-off', this.current.reason));
    return this.tunnel.open(request);
  }

  close(): void {
    this.tunnel.close();
  }

  private setState(state: PathServiceState): void {
    if (this.current.status === state.status) return;
    this.current = state;
    this.emit('state', state);
  }
}

function stateAfterClose(error: SessionError | undefined): PathServiceState {
  if (error instanceof UntrustedExitError && error.reason === 'no-torrents')
    return { status: 'lacking', reason: "the path's exit does not serve torrents" };
  return { status: 'none' };
}
