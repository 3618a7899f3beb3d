/**
 * CLI entry of the signaling server: parse flags, start, log JSON lines with pino, and shut down cleanly on
 * SIGTERM/SIGINT (peers are told `shutting-down`; the process exits within 5 s whatever happens).
 */
import { pino } from 'pino';
import { withDeadline } from '@underpass/shared/deadline';
import { UnderpassError, errorMessage } from '@underpass/shared/errors';
import type { Logger } from '@underpass/shared/logger';
import { USAGE, parseConfig } from './config.js';
import { startSignalingServer } from './server.js';

/** After a signal, the process exits within this long whatever happens. */
const DEFAULT_SHUTDOWN_DEADLINE_MS = 5_000;

async function main(): Promise<void> {
  const parsed = parseConfig(process.argv.slice(2), process.env);
  if (parsed.kind === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (parsed.kind === 'error') {
    process.stderr.write(`underpass-signaling: ${parsed.message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  const { config } = parsed;
  const log = pino({ name: 'underpass-signaling', level: config.logLevel });
  const logger: Logger = log;

  let server;
  try {
    server = await startSignalingServer({
      port: config.port,
      host: config.host,
      limits: config.limits,
      logger,
      logAddresses: config.logAddresses ?? false,
      ...(config.trustedProxies ? { trustedProxies: config.trustedProxies } : {}),
      ...(config.redis === undefined
        ? {}
        : { redis: { url: config.redis, expiryMs: config.redisExpiryMs, prefix: config.redisPrefix } }),
    });
  } catch (error) {
    log.fatal(
      { err: errorMessage(error), host: config.host, port: config.port },
      'cannot start the signaling server',
    );
    process.exitCode = 1;
    return;
  }
  log.info({ url: server.url }, 'ready');

  const running = server;
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal; exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    const tooLong = new UnderpassError('timeout', 'shutdown took too long');
    withDeadline(running.close(), { ms: DEFAULT_SHUTDOWN_DEADLINE_MS, onTimeout: () => tooLong }).then(
      () => process.exit(0),
      (error: unknown) => {
        if (error === tooLong) log.error({}, 'shutdown took too long; exiting');
        else log.error({ err: errorMessage(error) }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

void main();
