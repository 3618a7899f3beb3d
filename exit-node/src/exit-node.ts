import { join } from 'node:path';
import { homedir } from 'node:os';
import WebSocket from 'ws';
import { toBase64Url } from '@underpass/shared/bytes';
import type { ExitIdentity } from '@underpass/shared/trust';
import type { StaticKeyPair } from '@underpass/shared/tunnel';
import { UnderpassError, errorMessage } from '@underpass/shared/errors';
import { ExitEngine, ExitPolicy, type ExitStats, type SessionLimits } from '@underpass/shared/exit';
import { LoadReporter } from '@underpass/shared/engines';
import { PeerConnector } from '@underpass/shared/links';
import { silentLogger, type Logger } from '@underpass/shared/logger';
import {
  ReconnectingSignaling,
  type SignalingConnectionState,
  type WebSocketConstructorLike,
} from '@underpass/shared/signaling';
import { loadOrCreateStaticKey } from './keys.js';
import { OwnAddresses } from './own-addresses.js';
import {
  checkOwnCertificate,
  developmentCertificates,
  writeCertificateFile,
  type CertificateSource,
} from './certificates.js';
import { nodeAead } from './node-aead.js';
import { nodePeerFactory, type IceServer } from './node-peer.js';
import { StreamRouter, type TcpStreamDialer, type TorrentDialer } from './stream-router.js';
import { TorrentService, type TorrentServiceOptions, type TorrentServiceStats } from './torrent/index.js';
import { TcpDialer, type Lookup } from './tcp-dialer.js';

export interface ExitNodeOptions {
  signalingUrl: string;
  /**
   * Where the exit's certificate comes from (`certificateFromFile`, or `developmentCertificates` for
   * `npm start` and tests). The exit does not start without a valid one for its key, policy and torrents.
   */
  certificate: CertificateSource;
  /** Holds the static key (exit-key.json) unless keyFile says otherwise. */
  dataDir?: string;
  keyFile?: string;
  /** CIDRs the operator allows although the default policy denies them. */
  allowDestinations?: string[];
  /** Ports or ranges taken out of the default denied set (never 25), and further ones to deny. */
  allowPorts?: string[];
  denyPorts?: string[];
  /** Local address for outgoing TCP. */
  bindAddress?: string;
  /**
   * Addresses of this exit that no interface shows (a public address behind NAT): denied as destinations like
   * every interface address and the bind address.
   */
  ownAddresses?: string[];
  /** Links (relays and direct clients) served at once; announced to the broker. */
  capacity?: number;
  iceServers?: IceServer[];
  connectTimeoutMs?: number;
  /** Lanes per WebRTC link (PeerConnectorOptions.lanes): asked for on links this end makes, agreed to on others. */
  lanes?: number;
  /** Client sessions served at once, across all links. */
  maxSessions?: number;
  maxStreamsPerSession?: number;
  limits?: Partial<SessionLimits>;
  lookup?: Lookup;
  /**
   * A dialer put in front of the exit's own TCP dialer (DNS, address and port policy, TCP), which it receives as
   * `policyDialer` and must hand every stream it does not serve itself. `npm start` serves its check page this
   * way (scripts/check-page-dialer.ts: one name, one port). No flag sets it: an operator's exit has the policy only.
   */
  tcpDialer?: (policyDialer: TcpStreamDialer) => TcpStreamDialer;
  /** Where the exit's JSON lines go (pino in main.ts); every line carries an `event` field. */
  logger?: Logger;
  /**
   * Serve torrents: the exit starts its torrent service (exit-node/src/torrent/) under its own address policy,
   * bind address, DNS and logger, says so in its announce (`torrents: true`), and closes it on close(). Absent
   * (and no `torrents`), torrent streams fail with `torrents-off`.
   */
  torrentService?: Omit<TorrentServiceOptions, 'policy' | 'bindAddress' | 'lookup' | 'logger'>;
  /** A ready torrent service instead (tests use a stand-in); it is closed on close() too. */
  torrents?: TorrentDialer;
  /** Reconnect timing after the signaling server is lost (default 250 ms doubling to 8 s, full jitter). */
  reconnectBackoff?: { baseMs?: number; maxMs?: number };
}

/** Links (relays and direct clients) served at once, unless the operator says otherwise. */
export const DEFAULT_EXIT_CAPACITY = 100;

export interface ExitNode {
  /** The key clients pin, base64url. */
  readonly exitKey: string;
  /** The broker's id for this exit: it changes with every reconnect; '' while not connected. */
  readonly peerId: string;
  /** The connection to the signaling server: connected, or reconnecting (sessions carry on meanwhile). */
  signalingState(): SignalingConnectionState;
  stats(): ExitStats;
  /** The torrent service's figures, when this exit started one (`torrentService`). */
  torrentStats(): TorrentServiceStats | undefined;
  /** When the certificate in use expires (seconds since the epoch). */
  readonly certificateExpiresAt: number;
  /**
   * Asks the certificate source again (a renewal: SIGHUP in main.ts). A valid one is sent in every handshake
   * from then on; an invalid one is refused (the error says why) and the current one stays.
   */
  reloadCertificate(): Promise<void>;
  /**
   * Settles when the exit ended by itself, with why: another process proved this exit's key to the broker and
   * took over its registration (`replaced`). The exit has closed by then and does not reconnect: two processes
   * with one key would take it from each other for ever. Never settles otherwise.
   */
  readonly ended: Promise<UnderpassError>;
  /**
   * Leaves the broker, ends every circuit with a CLOSE cell ("the exit is shutting down") and every link with
   * its goodbye, and settles once the far ends have read them and ended the connections (at most ~5.5 s).
   */
  close(): Promise<void>;
}

export function defaultDataDir(): string {
  return process.env.UNDERPASS_EXIT_DATA_DIR ?? join(homedir(), '.local', 'share', 'underpass-exit');
}

/** What the exit is, as its certificate must say: its key, its policy summary, whether it serves torrents. */
export type ExitIdentityOptions = Pick<
  ExitNodeOptions,
  'dataDir' | 'keyFile' | 'allowDestinations' | 'allowPorts' | 'denyPorts' | 'bindAddress' | 'ownAddresses'
> & { servesTorrents: boolean };

/**
 * The exit's identity for these options (its key is created on first use): what `--print-identity` shows an
 * operator to ask the directory for a certificate, and what startExitNode checks the certificate against.
 */
export async function exitIdentity(
  options: ExitIdentityOptions,
): Promise<ExitIdentity & { staticKey: StaticKeyPair; policyRules: ExitPolicy }> {
  const keyFile = options.keyFile ?? join(options.dataDir ?? defaultDataDir(), 'exit-key.json');
  const staticKey = await loadOrCreateStaticKey(keyFile);
  const policy = new ExitPolicy({
    allowDestinations: options.allowDestinations ?? [],
    allowPorts: options.allowPorts ?? [],
    denyPorts: options.denyPorts ?? [],
    // Its own interfaces (re-read every 2 s), bind address and declared addresses are never destinations.
    ownAddresses: new OwnAddresses({
      extra: [...(options.bindAddress ? [options.bindAddress] : []), ...(options.ownAddresses ?? [])],
    }).addresses,
  });
  return {
    staticKey,
    policyRules: policy,
    exitKey: staticKey.publicKey,
    policy: policy.summary(),
    torrents: options.servesTorrents,
  };
}

/**
 * DEVELOPMENT ONLY (tests, benchmarks that run the exit's command): writes DATA_DIR/exit-certificate.json from
 * the development directory key for the exit these options make, as an operator's directory would.
 */
export async function writeDevelopmentCertificate(options: ExitIdentityOptions): Promise<string> {
  const { staticKey: _staticKey, policyRules: _policy, ...identity } = await exitIdentity(options);
  const file = join(options.dataDir ?? defaultDataDir(), 'exit-certificate.json');
  await writeCertificateFile(file, await developmentCertificates(identity));
  return file;
}

/**
 * Starts an exit: loads its key, announces it to the broker, and serves every link the broker sends. Resolves
 * once announced; while the broker cannot be reached it keeps trying (with backoff, logged), at start and
 * whenever the broker goes away later. Sessions and links that are up never depend on the broker.
 */
export async function startExitNode(options: ExitNodeOptions): Promise<ExitNode> {
  const logger = options.logger ?? silentLogger;
  const {
    staticKey,
    policyRules: policy,
    ...identity
  } = await exitIdentity({
    ...options,
    servesTorrents: Boolean(options.torrents ?? options.torrentService),
  });
  const exitKey = toBase64Url(staticKey.publicKey);
  // Checked before anything starts: an exit without a valid certificate serves no one.
  const loadCertificate = async () => {
    const bundle = await options.certificate(identity);
    return { bytes: bundle.certificate, fields: checkOwnCertificate(bundle, identity) };
  };
  let certificate = await loadCertificate();
  const torrentService = options.torrentService
    ? await TorrentService.start({
        ...options.torrentService,
        policy,
        ...(options.bindAddress ? { bindAddress: options.bindAddress } : {}),
        ...(options.lookup ? { lookup: options.lookup } : {}),
        logger,
      })
    : undefined;
  const policyDialer = new TcpDialer({
    policy,
    bindAddress: options.bindAddress,
    connectTimeoutMs: options.connectTimeoutMs,
    lookup: options.lookup,
  });
  const dialer = new StreamRouter({
    tcp: options.tcpDialer ? options.tcpDialer(policyDialer) : policyDialer,
    torrents: options.torrents ?? torrentService,
  });
  const engine = new ExitEngine({
    staticKey,
    certificate: () => certificate.bytes,
    dialer,
    maxSessions: options.maxSessions,
    maxStreamsPerSession: options.maxStreamsPerSession,
    limits: options.limits,
    aead: nodeAead,
  });
  engine.on('stream-failed', (error) =>
    logger.info({ event: 'stream-failed', code: error.code }, 'a stream failed'),
  );
  engine.on('session-closed', (error) =>
    logger.info({ event: 'session-closed', code: error?.code ?? 'closed' }, 'a session closed'),
  );

  const capacity = options.capacity ?? DEFAULT_EXIT_CAPACITY;
  const signaling = new ReconnectingSignaling({
    url: options.signalingUrl,
    // An exit started before its server (or during a redeploy) waits for it rather than exiting.
    retryFirstConnect: true,
    ...(options.reconnectBackoff ? { backoff: options.reconnectBackoff } : {}),
    WebSocket: WebSocket as unknown as WebSocketConstructorLike, // ws's typings differ only in overloads
    hello: {
      role: 'exit',
      exitKey,
      capacity,
      policy: policy.summary(),
      // Absent rather than false when off: what a server that predates the field expects.
      ...(dialer.servesTorrents ? { torrents: true } : {}),
      // So that clients use its paths without first waiting for a PING's answer (PROTOCOL.md §4).
      pings: true,
    },
    // The broker may ask the exit to prove it holds the key it announces; the proof is a MAC, never the key.
    exitSecretKey: staticKey.secretKey,
  });
  const connector = new PeerConnector({
    signaling,
    createPeer: nodePeerFactory(options.iceServers),
    connectTimeoutMs: options.connectTimeoutMs,
    lanes: options.lanes,
  });
  // Links come and go as clients choose (direct mode): the broker hears the count at most once a second.
  const load = new LoadReporter({ report: (links) => signaling.reportLoad(links) });
  let linksComing = 0;
  signaling.on('link', (offer) => {
    if (offer.initiator) return;
    // The broker balances by the load we report; this is the backstop when it sends more anyway.
    if (engine.stats().links + linksComing >= capacity) {
      logger.warn({ event: 'link-refused', reason: 'at capacity', capacity }, 'link refused: at capacity');
      // Said, not only dropped: the other member learns it at once, and the id is not claimed after a reconnect.
      signaling.linkClosed(offer.linkId);
      return;
    }
    linksComing += 1;
    connector.connect(offer.linkId, false).then(
      (link) => {
        linksComing -= 1;
        // Links from one peer (a relay that asked for more than one) share one circuit cap.
        engine.addLink(link, { peerId: offer.peer.peerId });
        logger.info({ event: 'link-up', role: offer.peer.role }, 'link up');
        load.set(engine.stats().links);
        link.on('close', () => load.set(engine.stats().links));
      },
      (error: unknown) => {
        linksComing -= 1;
        logger.warn({ event: 'link-failed', message: errorMessage(error) }, 'a link did not come up');
      },
    );
  });
  signaling.on('error', (error) =>
    logger.warn(
      { event: 'signaling-error', code: error.code, message: error.message },
      'the signaling server reported an error',
    ),
  );
  /** Stops serving; the connection to the broker is the caller's (replaced: already stopped, state kept). */
  const stopServing = async () => {
    load.close();
    engine.close();
    await dialer.close();
  };
  const close = async () => {
    // First out of the broker's list, so that no new link comes; then the links' last words are let out.
    signaling.close();
    await stopServing();
    await connector.connectionsEnded();
  };
  let end!: (why: UnderpassError) => void;
  const ended = new Promise<UnderpassError>((resolve) => (end = resolve));
  signaling.on('state', (state) => {
    switch (state.status) {
      case 'connected':
        logger.info(
          { event: 'announced', exitKey, policy: policy.summary(), torrents: dialer.servesTorrents },
          'announced to the broker',
        );
        return;
      case 'reconnecting':
        logger.warn(
          {
            event: 'signaling-reconnecting',
            attempt: state.attempt,
            nextInMs: state.nextInMs,
            code: state.code,
            reason: state.reason,
            links: engine.stats().links,
          },
          'lost the signaling server; serving the links that are up and reconnecting',
        );
        return;
      case 'stopped':
        if (state.code === 'replaced') {
          logger.error(
            { event: 'replaced', code: state.code, reason: state.reason, links: engine.stats().links },
            'another exit process proved this key and took over; this one stops (see the other process)',
          );
          void stopServing()
            .then(() => connector.connectionsEnded())
            .finally(() => end(new UnderpassError('replaced', state.reason ?? 'replaced')));
        } else if (state.code !== undefined)
          logger.error(
            { event: 'signaling-stopped', code: state.code, reason: state.reason },
            'the signaling server refused this exit for good',
          );
        return;
      case 'connecting':
        return;
    }
  });
  try {
    await signaling.connect();
  } catch (error) {
    await close();
    throw error;
  }

  return {
    exitKey,
    get peerId() {
      return signaling.peerId ?? '';
    },
    signalingState: () => signaling.state,
    stats: () => engine.stats(),
    torrentStats: () => torrentService?.stats(),
    get certificateExpiresAt() {
      return certificate.fields.expiresAt;
    },
    reloadCertificate: async () => {
      certificate = await loadCertificate();
      logger.info(
        {
          event: 'certificate-loaded',
          expiresAt: new Date(certificate.fields.expiresAt * 1000).toISOString(),
        },
        'certificate renewed',
      );
    },
    ended,
    close,
  };
}
