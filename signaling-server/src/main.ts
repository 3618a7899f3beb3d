/**
 * CLI entry of the signaling server: parse flags, start, log JSON lines with pino, and shut down cleanly on
 * SIGTERM/SIGINT (peers are told `shutting-down`; the process exits within 5 s whatever happens).
 */
import { pino } from 'pino';
import { USAGE, parseConfig } from './config.js';
import type { SignalingLogger } from './logger.js';
import { startSignalingServer } from './server.js';

const SHUTDOWN_DEADLINE_MS = 5_000;

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
  const logger: SignalingLogger = {
    debug: (fields, message) => log.debug(fields, message),
    info: (fields, message) => log.info(fields, message),
    warn: (fields, message) => log.warn(fields, message),
    error: (fields, message) => log.error(fields, message),
  };

  let server;
  try {
    server = await startSignalingServer({
      port: config.port,
      host: config.host,
      limits: config.limits,
      logger,
      logAddresses: config.logAddresses ?? false,
      ...(config.redis === undefined
        ? {}
        : { redis: { url: config.redis, expiryMs: config.redisExpiryMs, prefix: config.redisPrefix } }),
    });
  } catch (error) {
    log.fatal(
      { err: String(error), host: config.host, port: config.port },
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
    setTimeout(() => {
      log.error({}, 'shutdown took too long; exiting');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: String(error) }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

void main();
