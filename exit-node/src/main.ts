/**
 * CLI entry of the exit node: flags (config.ts), then --print-identity or start, log JSON lines with pino, renew
 * the certificate on SIGHUP and shut down on SIGTERM/SIGINT.
 */
import { pino } from 'pino';
import { EXIT_FAILURE, EXIT_OK, runCli } from '@underpass/shared/cli';
import { toBase64Url } from '@underpass/shared/bytes';
import { errorMessage } from '@underpass/shared/errors';
import { exitIdentity, startExitNode } from './exit-node.js';
import { certificateFromFile } from './certificates.js';
import { TOOL, USAGE, parseExitConfig } from './config.js';

/** How often the exit logs its figures (sessions, streams, bytes; torrents). */
const STATS_LOG_INTERVAL_MS = 60_000;

async function main(): Promise<number | void> {
  const parsed = parseExitConfig(process.argv.slice(2), process.env);
  if (parsed.kind === 'help') {
    process.stdout.write(USAGE);
    return EXIT_OK;
  }
  const { config } = parsed;
  if (config.printIdentity) {
    const identity = await exitIdentity({
      dataDir: config.dataDir,
      keyFile: config.keyFile,
      allowDestinations: config.allowDestinations,
      allowPorts: config.allowPorts,
      denyPorts: config.denyPorts,
      servesTorrents: config.torrents !== undefined,
    });
    const exitKey = toBase64Url(identity.exitKey);
    console.log(
      JSON.stringify({ exitKey, policy: identity.policy, torrents: identity.torrents }, null, 2) +
        `\n\nThe directory issues its certificate with:\n  npm run directory -- issue --directory-key DIRECTORY_KEY_FILE` +
        ` --exit-key ${exitKey} --policy '${identity.policy.replaceAll("'", "'\\''")}'` +
        `${identity.torrents ? ' --torrents' : ''} --days 90 --out exit-certificate.json`,
    );
    return EXIT_OK;
  }
  const logger = pino({ name: TOOL });
  const exit = await startExitNode({
    certificate: certificateFromFile(config.certificate),
    signalingUrl: config.signalingUrl,
    dataDir: config.dataDir,
    keyFile: config.keyFile,
    allowDestinations: config.allowDestinations,
    allowPorts: config.allowPorts,
    denyPorts: config.denyPorts,
    bindAddress: config.bindAddress,
    ownAddresses: config.ownAddresses,
    capacity: config.capacity,
    maxSessions: config.maxSessions,
    maxStreamsPerSession: config.maxStreamsPerSession,
    lanes: config.lanes,
    connectTimeoutMs: config.connectTimeoutMs,
    limits: config.limits,
    iceServers: config.iceServers,
    logger,
    ...(config.torrents
      ? {
          torrentService: {
            dataDir: config.torrents.dir,
            listenPort: config.torrents.listenPort,
            dht: config.torrents.dht,
            limits: config.torrents.limits,
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
  // Clients are told (a CLOSE cell on each circuit, then each link's goodbye) and the exit waits up to ~5 s for
  // them to read it, so they move to another exit at once; a second signal ends the process without waiting.
  const shutdown = () => {
    logger.info({ event: 'shutdown', links: exit.stats().links }, 'shutting down: telling clients');
    clearInterval(figures);
    void exit.close().finally(() => {
      logger.info({ event: 'shutdown-done' }, 'clients told; exiting');
      process.exit(0);
    });
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
  // Another process took this key over (logged, closed): a failure for the operator, who runs one of the two.
  void exit.ended.then(() => {
    clearInterval(figures);
    process.exit(EXIT_FAILURE);
  });
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

runCli(TOOL, main);
