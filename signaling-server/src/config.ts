/**
 * Command-line flags and environment variables of the signaling server. Flags win over the environment,
 * the environment over defaults. Parsing never exits the process; main.ts decides what to do.
 */
import { HELP_OPTION, helpTable, parseFlags, type HelpRow } from '@underpass/shared/cli';
import { errorMessage } from '@underpass/shared/errors';
import { DEFAULT_LIMITS, MIN_LIMITS, type SignalingLimits } from './limits.js';
import { DEFAULT_REDIS_EXPIRY_MS } from './redis-cluster.js';
import { DEFAULT_REDIS_PREFIX } from './redis-registry.js';
import { TrustedProxies } from './client-address.js';

export const DEFAULT_PORT = 8600;
export const DEFAULT_HOST = '127.0.0.1';
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type SignalingConfig = {
  port: number;
  host: string;
  logLevel: LogLevel;
  limits: Partial<SignalingLimits>;
  /** redis:// URL of the shared registry; unset means in memory (one instance). */
  redis?: string;
  /** How long an instance that stopped heartbeating keeps its peers in the shared registry. */
  redisExpiryMs?: number;
  /** Prefix of every Redis key and channel: several networks can share one Redis. */
  redisPrefix?: string;
  /** Write peers' IP addresses into the logs. */
  logAddresses?: boolean;
  /** Reverse proxies whose `Forwarded`/`X-Forwarded-For` name the client (addresses or CIDR ranges). */
  trustedProxies?: string[];
};

export type ConfigResult =
  | { kind: 'run'; config: SignalingConfig }
  | { kind: 'help' }
  /** A usage error: `message` says what was wrong. */
  | { kind: 'error'; message: string };

type LimitFlag = { flag: string; env: string; key: keyof SignalingLimits; max: number; help: string };

/** Every limit settable from outside; the README's table lists the same. */
export const LIMIT_FLAGS: readonly LimitFlag[] = [
  { flag: 'max-peers', env: 'MAX_PEERS', key: 'maxPeers', max: 1_000_000, help: 'open connections at once' },
  {
    flag: 'max-connections-per-address',
    env: 'MAX_CONNECTIONS_PER_ADDRESS',
    key: 'maxConnectionsPerAddress',
    max: 1_000_000,
    help: 'open connections from one IP address',
  },
  {
    flag: 'max-links-per-client',
    env: 'MAX_LINKS_PER_CLIENT',
    key: 'maxLinksPerClient',
    max: 1000,
    help: 'links (open sessions) one client may hold',
  },
  {
    flag: 'messages-per-second',
    env: 'MESSAGES_PER_SECOND',
    key: 'messagesPerSecond',
    max: 1_000_000,
    help: 'sustained messages per second per connection',
  },
  {
    flag: 'message-burst',
    env: 'MESSAGE_BURST',
    key: 'messageBurst',
    max: 1_000_000,
    help: 'burst of the per-connection token bucket',
  },
  {
    flag: 'max-message-bytes',
    env: 'MAX_MESSAGE_BYTES',
    key: 'maxMessageBytes',
    max: 64 * 1024,
    help: 'largest message (the protocol caps it at 64 KiB)',
  },
  {
    flag: 'handshake-timeout-ms',
    env: 'HANDSHAKE_TIMEOUT_MS',
    key: 'handshakeTimeoutMs',
    max: 600_000,
    help: 'time to say hello (and prove an exit key)',
  },
  {
    flag: 'idle-timeout-ms',
    env: 'IDLE_TIMEOUT_MS',
    key: 'idleTimeoutMs',
    max: 86_400_000,
    help: 'a peer silent this long is dropped',
  },
  {
    flag: 'match-wait-ms',
    env: 'MATCH_WAIT_MS',
    key: 'matchWaitMs',
    max: 600_000,
    help: 'how long a path request waits for a relay (0: not at all)',
  },
  {
    flag: 'max-waiting-requests',
    env: 'MAX_WAITING_REQUESTS',
    key: 'maxWaitingRequests',
    max: 1_000_000,
    help: 'path requests waiting for a relay at once',
  },
  {
    flag: 'max-errors',
    env: 'MAX_ERRORS',
    key: 'maxErrors',
    max: 1_000_000,
    help: 'protocol errors before a connection is closed',
  },
  {
    flag: 'ping-interval-ms',
    env: 'PING_INTERVAL_MS',
    key: 'pingIntervalMs',
    max: 3_600_000,
    help: 'WebSocket ping interval (dead-peer detection)',
  },
];

/** [flag, what it does, environment variable, default]. */
const USAGE_ROWS: [string, string, string, string][] = [
  ['--port <n>', 'TCP port, 0 for any free one', 'UNDERPASS_SIGNALING_PORT', `${DEFAULT_PORT}`],
  ['--host <addr>', 'interface to listen on', 'UNDERPASS_SIGNALING_HOST', DEFAULT_HOST],
  ['--log-level <level>', LOG_LEVELS.join('|'), 'UNDERPASS_LOG_LEVEL', 'info'],
  ['--log-addresses', "write peers' IP addresses in logs", 'UNDERPASS_SIGNALING_LOG_ADDRESSES=1', 'off'],
  [
    '--trusted-proxy <cidr>',
    'believe this reverse proxy about the client address (repeatable)',
    'UNDERPASS_SIGNALING_TRUSTED_PROXIES=a,b',
    'none',
  ],
  ['--redis <url>', 'share one network between instances', 'UNDERPASS_SIGNALING_REDIS', 'in memory'],
  [
    '--redis-expiry-ms <n>',
    "a dead instance's peers leave after this",
    'UNDERPASS_SIGNALING_REDIS_EXPIRY_MS',
    `${DEFAULT_REDIS_EXPIRY_MS}`,
  ],
  [
    '--redis-prefix <text>',
    'prefix of Redis keys and channels',
    'UNDERPASS_SIGNALING_REDIS_PREFIX',
    DEFAULT_REDIS_PREFIX,
  ],
  ...LIMIT_FLAGS.map((f): [string, string, string, string] => [
    `--${f.flag} <n>`,
    f.help,
    `UNDERPASS_SIGNALING_${f.env}`,
    `${DEFAULT_LIMITS[f.key]}`,
  ]),
];

export const USAGE = `Usage: underpass-signaling [options]

The signaling server of an Underpass network. Each option is also settable through the environment
variable shown; flags win over the environment.

Options:
${helpTable([
  ...USAGE_ROWS.map(([flag, help, env, fallback]): HelpRow => [
    flag,
    `${help}\n${env} (default ${fallback})`,
  ]),
  ['-h, --help', 'print this and exit'],
])}
`;

type Env = Record<string, string | undefined>;

function integer(name: string, text: string, min: number, max: number): number | string {
  if (!/^\d+$/.test(text)) return `${name} must be an integer, got "${text}"`;
  const n = Number(text);
  if (n < min || n > max) return `${name} must be between ${min} and ${max}, got ${n}`;
  return n;
}

export function parseConfig(argv: readonly string[], env: Env): ConfigResult {
  let values: Record<string, string | boolean | string[] | undefined>;
  const limitOptions = Object.fromEntries(LIMIT_FLAGS.map((f) => [f.flag, { type: 'string' as const }]));
  try {
    ({ values } = parseFlags({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'log-level': { type: 'string' },
        'log-addresses': { type: 'boolean' },
        'trusted-proxy': { type: 'string', multiple: true },
        redis: { type: 'string' },
        'redis-expiry-ms': { type: 'string' },
        'redis-prefix': { type: 'string' },
        help: HELP_OPTION,
        ...limitOptions,
      },
    }));
  } catch (error) {
    return { kind: 'error', message: errorMessage(error) };
  }
  if (values['help'] === true) return { kind: 'help' };
  // Where the value came from names it in an error: the flag, or the environment variable.
  const source: Record<string, string> = {};
  const pick = (flag: string, envName: string): string | undefined => {
    const v = values[flag];
    source[flag] = typeof v === 'string' ? `--${flag}` : envName;
    return typeof v === 'string' ? v : env[envName] || undefined;
  };

  const portText = pick('port', 'UNDERPASS_SIGNALING_PORT');
  const port = portText === undefined ? DEFAULT_PORT : integer(source['port']!, portText, 0, 65535);
  if (typeof port === 'string') return { kind: 'error', message: port };

  const host = pick('host', 'UNDERPASS_SIGNALING_HOST') ?? DEFAULT_HOST;
  if (host.length === 0 || host.length > 255 || /\s/.test(host))
    return { kind: 'error', message: `${source['host']} is not a valid address: "${host}"` };

  const levelText = pick('log-level', 'UNDERPASS_LOG_LEVEL') ?? 'info';
  const logLevel = LOG_LEVELS.find((l) => l === levelText);
  if (!logLevel)
    return {
      kind: 'error',
      message: `${source['log-level']} must be one of ${LOG_LEVELS.join(', ')}, got "${levelText}"`,
    };

  const limits: Partial<SignalingLimits> = {};
  for (const f of LIMIT_FLAGS) {
    const text = pick(f.flag, `UNDERPASS_SIGNALING_${f.env}`);
    if (text === undefined) continue;
    const n = integer(source[f.flag]!, text, MIN_LIMITS[f.key] ?? 1, f.max);
    if (typeof n === 'string') return { kind: 'error', message: n };
    limits[f.key] = n;
  }
  const config: SignalingConfig = { port, host, logLevel, limits };

  const redis = pick('redis', 'UNDERPASS_SIGNALING_REDIS');
  if (redis !== undefined) {
    if (!/^rediss?:\/\/\S+$/.test(redis))
      return { kind: 'error', message: `${source['redis']} must be a redis:// or rediss:// URL` };
    config.redis = redis;
  }
  const expiryText = pick('redis-expiry-ms', 'UNDERPASS_SIGNALING_REDIS_EXPIRY_MS');
  if (expiryText !== undefined) {
    const n = integer(source['redis-expiry-ms']!, expiryText, 1000, 3_600_000);
    if (typeof n === 'string') return { kind: 'error', message: n };
    config.redisExpiryMs = n;
  }
  const prefix = pick('redis-prefix', 'UNDERPASS_SIGNALING_REDIS_PREFIX');
  if (prefix !== undefined) {
    if (!/^[A-Za-z0-9_:.-]{1,64}$/.test(prefix))
      return { kind: 'error', message: `${source['redis-prefix']} must be 1-64 of A-Z a-z 0-9 _ : . -` };
    config.redisPrefix = prefix;
  }
  const proxyFlags = values['trusted-proxy'];
  const proxies = Array.isArray(proxyFlags)
    ? proxyFlags
    : (env['UNDERPASS_SIGNALING_TRUSTED_PROXIES'] ?? '').split(',').filter((entry) => entry.trim() !== '');
  if (proxies.length > 0) {
    try {
      TrustedProxies.parse(proxies);
    } catch (error) {
      const name = Array.isArray(proxyFlags) ? '--trusted-proxy' : 'UNDERPASS_SIGNALING_TRUSTED_PROXIES';
      return { kind: 'error', message: `${name}: ${errorMessage(error)}` };
    }
    config.trustedProxies = proxies.map((entry) => entry.trim());
  }
  const logAddresses = values['log-addresses'] === true || env['UNDERPASS_SIGNALING_LOG_ADDRESSES'] === '1';
  if (logAddresses) config.logAddresses = true;
  return { kind: 'run', config };
}
