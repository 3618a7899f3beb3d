/**
 * Command-line flags and environment variables of the signaling server. Flags win over the environment,
 * the environment over defaults. Parsing never exits the process; main.ts decides what to do.
 */
import { parseArgs } from 'node:util';
import type { SignalingLimits } from './limits.js';

export const DEFAULT_PORT = 8600;
export const DEFAULT_HOST = '127.0.0.1';
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type SignalingConfig = {
  port: number;
  host: string;
  logLevel: LogLevel;
  limits: Partial<SignalingLimits>;
};

export type ConfigResult =
  { kind: 'run'; config: SignalingConfig } | { kind: 'help' } | { kind: 'error'; message: string };

export const USAGE = `Usage: underpass-signaling [options]

Options (each also settable through the environment variable shown):
  --port <n>                  TCP port, 0 for any free one   UNDERPASS_SIGNALING_PORT  (default ${DEFAULT_PORT})
  --host <addr>               interface to listen on         UNDERPASS_SIGNALING_HOST  (default ${DEFAULT_HOST})
  --log-level <level>         ${LOG_LEVELS.join('|')}
                                                             UNDERPASS_LOG_LEVEL       (default info)
  --max-peers <n>             open connections at once       UNDERPASS_SIGNALING_MAX_PEERS (default 10000)
  --max-links-per-client <n>  links one client may hold      UNDERPASS_SIGNALING_MAX_LINKS_PER_CLIENT (default 8)
  --help                      print this and exit
`;

type Env = Record<string, string | undefined>;

function integer(name: string, text: string, min: number, max: number): number | string {
  if (!/^\d+$/.test(text)) return `${name} must be an integer, got "${text}"`;
  const n = Number(text);
  if (n < min || n > max) return `${name} must be between ${min} and ${max}, got ${n}`;
  return n;
}

export function parseConfig(argv: readonly string[], env: Env): ConfigResult {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'log-level': { type: 'string' },
        'max-peers': { type: 'string' },
        'max-links-per-client': { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (error) {
    return { kind: 'error', message: error instanceof Error ? error.message : String(error) };
  }
  if (values['help'] === true) return { kind: 'help' };
  const pick = (flag: string, envName: string): string | undefined => {
    const v = values[flag];
    return typeof v === 'string' ? v : env[envName] || undefined;
  };

  const portText = pick('port', 'UNDERPASS_SIGNALING_PORT');
  const port = portText === undefined ? DEFAULT_PORT : integer('--port', portText, 0, 65535);
  if (typeof port === 'string') return { kind: 'error', message: port };

  const host = pick('host', 'UNDERPASS_SIGNALING_HOST') ?? DEFAULT_HOST;
  if (host.length === 0 || host.length > 255 || /\s/.test(host))
    return { kind: 'error', message: `--host is not a valid address: "${host}"` };

  const levelText = pick('log-level', 'UNDERPASS_LOG_LEVEL') ?? 'info';
  const logLevel = LOG_LEVELS.find((l) => l === levelText);
  if (!logLevel) return { kind: 'error', message: `--log-level must be one of ${LOG_LEVELS.join(', ')}` };

  const limits: Partial<SignalingLimits> = {};
  const maxPeersText = pick('max-peers', 'UNDERPASS_SIGNALING_MAX_PEERS');
  if (maxPeersText !== undefined) {
    const n = integer('--max-peers', maxPeersText, 1, 1_000_000);
    if (typeof n === 'string') return { kind: 'error', message: n };
    limits.maxPeers = n;
  }
  const maxLinksText = pick('max-links-per-client', 'UNDERPASS_SIGNALING_MAX_LINKS_PER_CLIENT');
  if (maxLinksText !== undefined) {
    const n = integer('--max-links-per-client', maxLinksText, 1, 1000);
    if (typeof n === 'string') return { kind: 'error', message: n };
    limits.maxLinksPerClient = n;
  }
  return { kind: 'run', config: { port, host, logLevel, limits } };
}
