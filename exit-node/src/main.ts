import { join } from 'node:path';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_LIMITS } from '@underpass/shared/exit';
import { DEFAULT_MAX_STREAMS } from '@underpass/shared/tunnel';
import { toBase64Url } from '@underpass/shared/bytes';
import { errorMessage } from '@underpass/shared/errors';
import { DEFAULT_EXIT_CAPACITY, defaultDataDir, exitIdentity, startExitNode } from './exit-node.js';
import { certificateFromFile } from './certificates.js';
import { DEFAULT_TCP_CONNECT_TIMEOUT_MS } from './tcp-dialer.js';
import { DEFAULT_TORRENT_LIMITS, DEFAULT_TORRENT_LISTEN_PORT, type TorrentLimits } from './torrent/index.js';

const inSeconds = (ms: number) => ms / 1000;
const MiB = 1024 * 1024;
const inMiB = (bytes: number) => bytes / MiB;
const TORRENT = DEFAULT_TORRENT_LIMITS;
/** How often the exit logs its figures (sessions, streams, bytes; torrents). */
const STATS_LOG_INTERVAL_MS = 60_000;

const USAGE = `underpass-exit — the Underpass exit node

  --signaling URL              signaling server (env UNDERPASS_SIGNALING_URL, default ws://127.0.0.1:8600)
  --data-dir DIR               where the static key lives (env UNDERPASS_EXIT_DATA_DIR,
                               default ~/.local/share/underpass-exit)
  --key-file FILE              the static key file (default DATA_DIR/exit-key.json, created 0600 on first start)
  --certificate FILE           this exit's certificate from the network's directory (env UNDERPASS_EXIT_CERTIFICATE,
                               default DATA_DIR/exit-certificate.json); the exit does not start without a valid one
                               for its key, policy and torrents. Re-read on SIGHUP (renewal without a restart)
  --print-identity             print what the directory needs to issue this exit's certificate (its key, policy
                               summary, torrents) for the flags given, and exit
  --allow-destination CIDR     allow a range the default policy denies (repeatable; e.g. 127.0.0.1/32 for tests)
  --allow-port PORT[-PORT]     allow a port the default port policy denies (repeatable; never 25)
  --deny-port PORT[-PORT]      deny a further port or range (repeatable)
  --bind-address ADDR          local address for outgoing connections
  --own-address ADDR           an address of this exit no interface shows, e.g. its public address behind NAT
                               (repeatable; interface addresses and the bind address are always denied)
  --capacity N                 links (relays and direct clients) served at once (default ${DEFAULT_EXIT_CAPACITY})
  --max-sessions N             client sessions at once, across all links (default ${DEFAULT_MAX_SESSIONS})
  --max-streams N              streams open at once in one session (default ${DEFAULT_MAX_STREAMS})
  --session-rate BYTES         bytes per second per session, both ways together (default 0: unlimited)
  --connect-timeout SECONDS    TCP connect timeout (default ${inSeconds(DEFAULT_TCP_CONNECT_TIMEOUT_MS)})
  --dial-timeout SECONDS       DNS and connect together (default ${inSeconds(DEFAULT_SESSION_LIMITS.dialTimeoutMs)})
  --idle-timeout SECONDS       reset a stream idle this long (default ${inSeconds(DEFAULT_SESSION_LIMITS.streamIdleTimeoutMs)})
  --ice-server URL             STUN/TURN server for peers behind NAT (repeatable; default none)

Torrents (off unless --torrents; read exit-node/README.md, "Torrent service", before turning them on):
  --torrents                   serve torrent streams: this exit joins BitTorrent swarms for its users
  --torrent-dir DIR            where torrent data is kept (default DATA_DIR/torrents)
  --torrent-port PORT          TCP port for incoming swarm peers (default ${DEFAULT_TORRENT_LISTEN_PORT})
  --torrent-max-size MIB       most a torrent may fetch, selected files together (default ${inMiB(TORRENT.maxTorrentBytes)})
  --torrent-disk MIB           disk budget for all torrents; idle ones are evicted, oldest use first (default ${inMiB(TORRENT.diskBudgetBytes)})
  --torrent-max N              torrents at once (default ${TORRENT.maxTorrents})
  --torrent-max-per-session N  torrents one client session may hold (default ${TORRENT.maxTorrentsPerSession})
  --torrent-max-users N        users of one torrent at once (default ${TORRENT.maxUsersPerTorrent})
  --torrent-metadata-timeout SECONDS  time to get a torrent's metadata (default ${inSeconds(TORRENT.metadataTimeoutMs)})
  --torrent-idle-timeout SECONDS      a torrent no user uses leaves the swarm after this (default ${inSeconds(TORRENT.idleTimeoutMs)})
  --torrent-max-conns N        swarm connections per torrent (default ${TORRENT.maxSwarmConns})
  --torrent-upload             also upload to the swarm (default: only to this exit's own users, never seed)
  --torrent-upload-ratio R     with --torrent-upload: per torrent, upload at most R times what it downloaded
                               from the swarm (plus ${inMiB(TORRENT.uploadGraceBytes)} MiB to start); 0.1 to 100 (default ${TORRENT.uploadRatio})
  --torrent-no-dht             find peers through trackers only
  --help`;

function wholeNumber(flag: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || value < min || value > max) {
    throw new Error(`--${flag} must be a whole number from ${min} to ${max}`);
  }
  return value;
}

function ratio(flag: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text) || value < min || value > max) {
    throw new Error(`--${flag} must be a number from ${min} to ${max}`);
  }
  return value;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      signaling: { type: 'string' },
      'data-dir': { type: 'string' },
      'key-file': { type: 'string' },
      certificate: { type: 'string' },
      'print-identity': { type: 'boolean' },
      'allow-destination': { type: 'string', multiple: true },
      'allow-port': { type: 'string', multiple: true },
      'deny-port': { type: 'string', multiple: true },
      'bind-address': { type: 'string' },
      'own-address': { type: 'string', multiple: true },
      capacity: { type: 'string' },
      'max-sessions': { type: 'string' },
      'max-streams': { type: 'string' },
      'session-rate': { type: 'string' },
      'connect-timeout': { type: 'string' },
      'dial-timeout': { type: 'string' },
      'idle-timeout': { type: 'string' },
      'ice-server': { type: 'string', multiple: true },
      torrents: { type: 'boolean' },
      'torrent-dir': { type: 'string' },
      'torrent-port': { type: 'string' },
      'torrent-max-size': { type: 'string' },
      'torrent-disk': { type: 'string' },
      'torrent-max': { type: 'string' },
      'torrent-max-per-session': { type: 'string' },
      'torrent-max-users': { type: 'string' },
      'torrent-metadata-timeout': { type: 'string' },
      'torrent-idle-timeout': { type: 'string' },
      'torrent-max-conns': { type: 'string' },
      'torrent-upload': { type: 'boolean' },
      'torrent-upload-ratio': { type: 'string' },
      'torrent-no-dht': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const logger = pino({ name: 'underpass-exit' });
  const seconds = (flag: string, text: string | undefined) => {
    const value = wholeNumber(flag, text, 1, 86_400);
    return value === undefined ? undefined : value * 1000;
  };
  const dialTimeoutMs = seconds('dial-timeout', values['dial-timeout']);
  const streamIdleTimeoutMs = seconds('idle-timeout', values['idle-timeout']);
  const bytesPerSecond = wholeNumber('session-rate', values['session-rate'], 0, 10 ** 10);
  const dataDir = values['data-dir'] ?? defaultDataDir();
  const torrentFlag = Object.keys(values).find((flag) => flag.startsWith('torrent-'));
  if (torrentFlag && !values.torrents) throw new Error(`--${torrentFlag} needs --torrents`);
  const mebibytes = (flag: string, text: string | undefined) => {
    const value = wholeNumber(flag, text, 1, 100_000_000);
    return value === undefined ? undefined : value * MiB;
  };
  if (values['torrent-upload-ratio'] !== undefined && !values['torrent-upload']) {
    throw new Error('--torrent-upload-ratio needs --torrent-upload');
  }
  const torrentLimits: Partial<TorrentLimits> = definedOnly({
    maxTorrentBytes: mebibytes('torrent-max-size', values['torrent-max-size']),
    diskBudgetBytes: mebibytes('torrent-disk', values['torrent-disk']),
    maxTorrents: wholeNumber('torrent-max', values['torrent-max'], 1, 10_000),
    maxTorrentsPerSession: wholeNumber('torrent-max-per-session', values['torrent-max-per-session'], 1, 1000),
    maxUsersPerTorrent: wholeNumber('torrent-max-users', values['torrent-max-users'], 1, 10_000),
    metadataTimeoutMs: seconds('torrent-metadata-timeout', values['torrent-metadata-timeout']),
    idleTimeoutMs: seconds('torrent-idle-timeout', values['torrent-idle-timeout']),
    maxSwarmConns: wholeNumber('torrent-max-conns', values['torrent-max-conns'], 1, 1000),
    uploadToSwarm: values['torrent-upload'] ? true : undefined,
    uploadRatio: ratio('torrent-upload-ratio', values['torrent-upload-ratio'], 0.1, 100),
  });
  const torrentPort = wholeNumber('torrent-port', values['torrent-port'], 1, 65535);
  if (values['print-identity']) {
    const identity = await exitIdentity({
      dataDir,
      keyFile: values['key-file'],
      allowDestinations: values['allow-destination'] ?? [],
      allowPorts: values['allow-port'] ?? [],
      denyPorts: values['deny-port'] ?? [],
      servesTorrents: values.torrents === true,
    });
    const exitKey = toBase64Url(identity.exitKey);
    console.log(
      JSON.stringify({ exitKey, policy: identity.policy, torrents: identity.torrents }, null, 2) +
        `\n\nThe directory issues its certificate with:\n  npm run directory -- issue --directory-key DIRECTORY_KEY_FILE` +
        ` --exit-key ${exitKey} --policy '${identity.policy.replaceAll("'", "'\\''")}'` +
        `${identity.torrents ? ' --torrents' : ''} --days 90 --out exit-certificate.json`,
    );
    return;
  }
  const certificatePath =
    values.certificate ?? process.env.UNDERPASS_EXIT_CERTIFICATE ?? join(dataDir, 'exit-certificate.json');
  const exit = await startExitNode({
    certificate: certificateFromFile(certificatePath),
    signalingUrl: values.signaling ?? process.env.UNDERPASS_SIGNALING_URL ?? 'ws://127.0.0.1:8600',
    dataDir,
    keyFile: values['key-file'],
    allowDestinations: values['allow-destination'] ?? [],
    allowPorts: values['allow-port'] ?? [],
    denyPorts: values['deny-port'] ?? [],
    bindAddress: values['bind-address'],
    ownAddresses: (values['own-address'] ?? []).map((address) => {
      if (!isIP(address)) throw new Error(`--own-address: "${address}" is not an IP address`);
      return address;
    }),
    capacity: wholeNumber('capacity', values.capacity, 1, 1000),
    maxSessions: wholeNumber('max-sessions', values['max-sessions'], 1, 100_000),
    maxStreamsPerSession: wholeNumber('max-streams', values['max-streams'], 1, 4096),
    connectTimeoutMs: seconds('connect-timeout', values['connect-timeout']),
    limits: {
      ...(dialTimeoutMs === undefined ? {} : { dialTimeoutMs }),
      ...(streamIdleTimeoutMs === undefined ? {} : { streamIdleTimeoutMs }),
      ...(bytesPerSecond === undefined ? {} : { bytesPerSecond }),
    },
    iceServers: (values['ice-server'] ?? []).map((urls) => ({ urls })),
    logger,
    ...(values.torrents
      ? {
          torrentService: {
            dataDir: values['torrent-dir'] ?? join(dataDir, 'torrents'),
            listenPort: torrentPort ?? DEFAULT_TORRENT_LISTEN_PORT,
            dht: !values['torrent-no-dht'],
            limits: torrentLimits,
          },
        }
      : {}),
  });
  logger.info(
    {
      event: 'ready',
      exitKey: exit.exitKey,
      peerId: exit.peerId,
      certificateExpiresAt: new Date(exit.certificateExpiresAt * 1000).toISOString(),
    },
    'the exit is ready',
  );
  // The exit has no HTTP endpoint: its figures go to the log, a line a minute (torrents' too, when served).
  const figures = setInterval(() => {
    const torrents = exit.torrentStats();
    logger.info({ event: 'stats', ...exit.stats(), ...(torrents ? { torrents } : {}) }, 'figures');
  }, STATS_LOG_INTERVAL_MS);
  figures.unref();
  const shutdown = () => {
    logger.info({ event: 'shutdown' }, 'shutting down');
    clearInterval(figures);
    void exit.close().finally(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  // Renewal: the operator replaces the file and sends SIGHUP; a bad file is refused and the old one kept.
  process.on('SIGHUP', () => {
    exit
      .reloadCertificate()
      .catch((error: unknown) =>
        logger.error(
          { event: 'certificate-refused', message: errorMessage(error) },
          'the new certificate was refused; the current one stays',
        ),
      );
  });
}

/** The fields that were given, so that defaults apply to the rest. */
function definedOnly<T extends object>(fields: { [K in keyof T]: T[K] | undefined }): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as Partial<T>;
}

main().catch((error: Error) => {
  console.error(`underpass-exit: ${error.message}`);
  process.exit(1);
});
