import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_LIMITS } from '@underpass/shared/exit';
import { DEFAULT_MAX_STREAMS } from '@underpass/shared/tunnel';
import { DEFAULT_EXIT_CAPACITY, defaultDataDir, startExitNode } from './exit-node.js';
import { DEFAULT_TCP_CONNECT_TIMEOUT_MS } from './tcp-dialer.js';

const inSeconds = (ms: number) => ms / 1000;

const USAGE = `underpass-exit — the Underpass exit node

  --signaling URL              signaling server (env UNDERPASS_SIGNALING_URL, default ws://127.0.0.1:8600)
  --data-dir DIR               where the static key lives (env UNDERPASS_EXIT_DATA_DIR,
                               default ~/.local/share/underpass-exit)
  --key-file FILE              the static key file (default DATA_DIR/exit-key.json, created 0600 on first start)
  --allow-destination CIDR     allow a range the default policy denies (repeatable; e.g. 127.0.0.1/32 for tests)
  --allow-port PORT[-PORT]     allow a port the default port policy denies (repeatable; never 25)
  --deny-port PORT[-PORT]      deny a further port or range (repeatable)
  --bind-address ADDR          local address for outgoing connections
  --capacity N                 links (relays and direct clients) served at once (default ${DEFAULT_EXIT_CAPACITY})
  --max-sessions N             client sessions at once, across all links (default ${DEFAULT_MAX_SESSIONS})
  --max-streams N              streams open at once in one session (default ${DEFAULT_MAX_STREAMS})
  --session-rate BYTES         bytes per second per session, both ways together (default 0: unlimited)
  --connect-timeout SECONDS    TCP connect timeout (default ${inSeconds(DEFAULT_TCP_CONNECT_TIMEOUT_MS)})
  --dial-timeout SECONDS       DNS and connect together (default ${inSeconds(DEFAULT_SESSION_LIMITS.dialTimeoutMs)})
  --idle-timeout SECONDS       reset a stream idle this long (default ${inSeconds(DEFAULT_SESSION_LIMITS.streamIdleTimeoutMs)})
  --ice-server URL             STUN/TURN server for peers behind NAT (repeatable; default none)
  --help`;

function wholeNumber(flag: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || value < min || value > max) {
    throw new Error(`--${flag} must be a whole number from ${min} to ${max}`);
  }
  return value;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      signaling: { type: 'string' },
      'data-dir': { type: 'string' },
      'key-file': { type: 'string' },
      'allow-destination': { type: 'string', multiple: true },
      'allow-port': { type: 'string', multiple: true },
      'deny-port': { type: 'string', multiple: true },
      'bind-address': { type: 'string' },
      capacity: { type: 'string' },
      'max-sessions': { type: 'string' },
      'max-streams': { type: 'string' },
      'session-rate': { type: 'string' },
      'connect-timeout': { type: 'string' },
      'dial-timeout': { type: 'string' },
      'idle-timeout': { type: 'string' },
      'ice-server': { type: 'string', multiple: true },
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
  const exit = await startExitNode({
    signalingUrl: values.signaling ?? process.env.UNDERPASS_SIGNALING_URL ?? 'ws://127.0.0.1:8600',
    dataDir: values['data-dir'] ?? defaultDataDir(),
    keyFile: values['key-file'],
    allowDestinations: values['allow-destination'] ?? [],
    allowPorts: values['allow-port'] ?? [],
    denyPorts: values['deny-port'] ?? [],
    bindAddress: values['bind-address'],
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
  });
  logger.info({ event: 'ready', exitKey: exit.exitKey, peerId: exit.peerId }, 'the exit is ready');
  const shutdown = () => {
    logger.info({ event: 'shutdown' }, 'shutting down');
    void exit.close().finally(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((error: Error) => {
  console.error(`underpass-exit: ${error.message}`);
  process.exit(1);
});
