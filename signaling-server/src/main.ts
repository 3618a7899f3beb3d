/**
 * CLI entry of the signaling server: parse flags, start, log JSON lines with pino, and shut down cleanly on
 * SIGTERM/SIGINT (peers are told `shutting-down`; the process exits within 5 s whatever happens).
 */
import { pino } from 'pino';
import { withDeadline } from '@underpass/shared/deadline';
import { UnderpassError, errorMessage } from '@underpass/shared/errors';
import type { Logger } from '@underpass/shared/logger';
import { EXIT_FAILURE, EXIT_USAGE, UsageError, usageErrorText } from '@underpass/shared/cli';
import { USAGE, parseConfig } from './config.js';
import { startSignalingServer } from './server.js';

const TOOL = 'underpass-signaling';

/** A Redis URL without its password, for messages. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the configured URL';
  }
}

/** After a signal, the process exits within this long whatever happens. */
const DEFAULT_SHUTDOWN_DEADLINE_MS = 5_000;

async function main(): Promise<void> {
  const parsed = parseConfig(process.argv.slice(2), process.env);
  if (parsed.kind === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (parsed.kind === 'error') {
    process.stderr.write(usageErrorText(TOOL, new UsageError(parsed.message)));
    process.exitCode = EXIT_USAGE;
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
    const where = `${config.host}:${config.port}${config.redis ? ` with Redis at ${redactUrl(config.redis)}` : ''}`;
    log.fatal({ err: errorMessage(error), host: config.host, port: config.port }, `cannot start on ${where}`);
    // The log may go to a collector; the person at the terminal reads stderr.
    process.stderr.write(`${TOOL}: cannot start on ${where}: ${errorMessage(error)}\n`);
    process.exitCode = EXIT_FAILURE;
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
