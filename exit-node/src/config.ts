/**
 * Command-line flags of underpass-exit, checked in full before anything starts: a bad value is a UsageError
 * (exit 2) even with --print-identity. Parsing never touches files or the network; main.ts does.
 */
import { isIP } from 'node:net';
import { join } from 'node:path';
import { HELP_OPTION, UsageError, helpTable, parseFlags } from '@underpass/shared/cli';
import {
  DEFAULT_MAX_SESSIONS,
  DEFAULT_SESSION_LIMITS,
  ExitPolicy,
  type SessionLimits,
} from '@underpass/shared/exit';
import { errorMessage } from '@underpass/shared/errors';
import { DEFAULT_MAX_STREAMS } from '@underpass/shared/tunnel';
import { DEFAULT_LINK_LANES, MAX_LANES } from '@underpass/shared/links';
import { DEFAULT_EXIT_CAPACITY, defaultDataDir } from './exit-node.js';
import { DEFAULT_TCP_CONNECT_TIMEOUT_MS } from './tcp-dialer.js';
import { DEFAULT_TORRENT_LIMITS, DEFAULT_TORRENT_LISTEN_PORT, type TorrentLimits } from './torrent/index.js';

export const TOOL = 'underpass-exit';
export const DEFAULT_SIGNALING_URL = 'ws://127.0.0.1:8600';

const inSeconds = (ms: number) => ms / 1000;
const MiB = 1024 * 1024;
const inMiB = (bytes: number) => bytes / MiB;
const TORRENT = DEFAULT_TORRENT_LIMITS;

export const USAGE = `Usage: underpass-exit [options]

The Underpass exit node: opens TCP connections to the web for the network's clients.

Options:
${helpTable([
  ['--signaling URL', `signaling server (env UNDERPASS_SIGNALING_URL, default ${DEFAULT_SIGNALING_URL})`],
  [
    '--data-dir DIR',
    'where the static key lives (env UNDERPASS_EXIT_DATA_DIR, default ~/.local/share/underpass-exit)',
  ],
  ['--key-file FILE', 'the static key file (default DATA_DIR/exit-key.json, created 0600 on first start)'],
  [
    '--certificate FILE',
    "this exit's certificate from the network's directory (env UNDERPASS_EXIT_CERTIFICATE, default " +
      'DATA_DIR/exit-certificate.json); the exit does not start without a valid one for its key, policy ' +
      'and torrents. Re-read on SIGHUP (renewal without a restart)',
  ],
  [
    '--print-identity',
    "print what the directory needs to issue this exit's certificate (its key, policy summary, torrents) " +
      'for the flags given, and exit',
  ],
  [
    '--allow-destination CIDR',
    'allow a range the default policy denies (repeatable; e.g. 127.0.0.1/32 for tests)',
  ],
  ['--allow-port PORT[-PORT]', 'allow a port the default port policy denies (repeatable; never 25)'],
  ['--deny-port PORT[-PORT]', 'deny a further port or range (repeatable)'],
  ['--bind-address ADDR', 'local address for outgoing connections'],
  [
    '--own-address ADDR',
    'an address of this exit no interface shows, e.g. its public address behind NAT (repeatable; ' +
      'interface addresses and the bind address are always denied)',
  ],
  ['--capacity N', `links (relays and direct clients) served at once (default ${DEFAULT_EXIT_CAPACITY})`],
  ['--max-sessions N', `client sessions at once, across all links (default ${DEFAULT_MAX_SESSIONS})`],
  ['--max-streams N', `streams open at once in one session (default ${DEFAULT_MAX_STREAMS})`],
  ['--session-rate BYTES', 'bytes per second per session, both ways together (default 0: unlimited)'],
  [
    '--lanes N',
    `PeerConnections per link at most, 1-${MAX_LANES} (default ${DEFAULT_LINK_LANES}; PROTOCOL.md, Lanes)`,
  ],
  ['--connect-timeout SECONDS', `TCP connect timeout (default ${inSeconds(DEFAULT_TCP_CONNECT_TIMEOUT_MS)})`],
  [
    '--dial-timeout SECONDS',
    `DNS and connect together (default ${inSeconds(DEFAULT_SESSION_LIMITS.dialTimeoutMs)})`,
  ],
  [
    '--idle-timeout SECONDS',
    `reset a stream idle this long (default ${inSeconds(DEFAULT_SESSION_LIMITS.streamIdleTimeoutMs)})`,
  ],
  ['--ice-server URL', 'STUN/TURN server for peers behind NAT (repeatable; default none)'],
  ['-h, --help', 'print this and exit'],
])}

Torrents (off unless --torrents; read exit-node/README.md, "Torrent service", before turning
them on):
${helpTable([
  ['--torrents', 'serve torrent streams: this exit joins BitTorrent swarms for its users'],
  ['--torrent-dir DIR', 'where torrent data is kept (default DATA_DIR/torrents)'],
  ['--torrent-port PORT', `TCP port for incoming swarm peers (default ${DEFAULT_TORRENT_LISTEN_PORT})`],
  [
    '--torrent-max-size MIB',
    `most a torrent may fetch, selected files together (default ${inMiB(TORRENT.maxTorrentBytes)})`,
  ],
  [
    '--torrent-disk MIB',
    `disk budget for all torrents; idle ones are evicted, oldest use first (default ${inMiB(TORRENT.diskBudgetBytes)})`,
  ],
  ['--torrent-max N', `torrents at once (default ${TORRENT.maxTorrents})`],
  [
    '--torrent-max-per-session N',
    `torrents one client session may hold (default ${TORRENT.maxTorrentsPerSession})`,
  ],
  ['--torrent-max-users N', `users of one torrent at once (default ${TORRENT.maxUsersPerTorrent})`],
  [
    '--torrent-metadata-timeout SECONDS',
    `time to get a torrent's metadata (default ${inSeconds(TORRENT.metadataTimeoutMs)})`,
  ],
  [
    '--torrent-idle-timeout SECONDS',
    `a torrent no user uses leaves the swarm after this (default ${inSeconds(TORRENT.idleTimeoutMs)})`,
  ],
  ['--torrent-max-conns N', `swarm connections per torrent (default ${TORRENT.maxSwarmConns})`],
  ['--torrent-upload', "also upload to the swarm (default: only to this exit's own users, never seed)"],
  [
    '--torrent-upload-ratio R',
    'with --torrent-upload: per torrent, upload at most R times what it downloaded from the swarm (plus ' +
      `${inMiB(TORRENT.uploadGraceBytes)} MiB to start); 0.1 to 100 (default ${TORRENT.uploadRatio})`,
  ],
  ['--torrent-no-dht', 'find peers through trackers only'],
])}
`;

/** What main.ts needs to start the exit (or print its identity), every value checked. */
export type ExitConfig = {
  printIdentity: boolean;
  signalingUrl: string;
  dataDir: string;
  keyFile: string | undefined;
  /** The certificate file (default DATA_DIR/exit-certificate.json). */
  certificate: string;
  allowDestinations: string[];
  allowPorts: string[];
  denyPorts: string[];
  bindAddress: string | undefined;
  ownAddresses: string[];
  capacity: number | undefined;
  maxSessions: number | undefined;
  maxStreamsPerSession: number | undefined;
  lanes: number | undefined;
  connectTimeoutMs: number | undefined;
  limits: Partial<SessionLimits>;
  iceServers: { urls: string }[];
  /** Present when --torrents is given. */
  torrents?: { dir: string; listenPort: number; dht: boolean; limits: Partial<TorrentLimits> };
};

export type ExitConfigResult = { kind: 'help' } | { kind: 'run'; config: ExitConfig };

type Env = Record<string, string | undefined>;

function wholeNumber(flag: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || value < min || value > max) {
    throw new UsageError(
      `--${flag} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

function ratio(flag: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text) || value < min || value > max) {
    throw new UsageError(`--${flag} must be a number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}

function seconds(flag: string, text: string | undefined): number | undefined {
  const value = wholeNumber(flag, text, 1, 86_400);
  return value === undefined ? undefined : value * 1000;
}

function mebibytes(flag: string, text: string | undefined): number | undefined {
  const value = wholeNumber(flag, text, 1, 100_000_000);
  return value === undefined ? undefined : value * MiB;
}

function ipAddress(flag: string, text: string | undefined): string | undefined {
  if (text !== undefined && !isIP(text)) throw new UsageError(`--${flag}: "${text}" is not an IP address`);
  return text;
}

/** `name`: where the text came from (the flag or the environment variable), for the message. */
function webSocketUrl(name: string, text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`${name}: "${text}" is not a URL`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:')
    throw new UsageError(`${name} must be a ws:// or wss:// URL, got "${text}"`);
  return text;
}

function iceServer(text: string): { urls: string } {
  if (!/^(stun|turns?):\S+$/.test(text))
    throw new UsageError(`--ice-server must be a stun:, turn: or turns: URL, got "${text}"`);
  return { urls: text };
}

/** The fields that were given, so that defaults apply to the rest. */
function definedOnly<T extends object>(fields: { [K in keyof T]: T[K] | undefined }): Partial<T> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/** Reads underpass-exit's command line; throws UsageError for anything wrong with it. */
export function parseExitConfig(argv: readonly string[], env: Env): ExitConfigResult {
  const { values } = parseFlags({
    args: [...argv],
    strict: true,
    allowPositionals: false,
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
      lanes: { type: 'string' },
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
      help: HELP_OPTION,
    },
  });
  if (values.help) return { kind: 'help' };

  const torrentFlag = Object.keys(values).find((flag) => flag.startsWith('torrent-'));
  if (torrentFlag && !values.torrents) throw new UsageError(`--${torrentFlag} needs --torrents`);
  if (values['torrent-upload-ratio'] !== undefined && !values['torrent-upload'])
    throw new UsageError('--torrent-upload-ratio needs --torrent-upload');

  const allowDestinations = values['allow-destination'] ?? [];
  const allowPorts = values['allow-port'] ?? [];
  const denyPorts = values['deny-port'] ?? [];
  try {
    // The exit builds the same policy at start; built here too so that a bad range is a usage error.
    new ExitPolicy({ allowDestinations, allowPorts, denyPorts });
  } catch (error) {
    throw new UsageError(errorMessage(error));
  }
  const dialTimeoutMs = seconds('dial-timeout', values['dial-timeout']);
  const streamIdleTimeoutMs = seconds('idle-timeout', values['idle-timeout']);
  const bytesPerSecond = wholeNumber('session-rate', values['session-rate'], 0, 10 ** 10);
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
  const dataDir = values['data-dir'] ?? defaultDataDir();

  return {
    kind: 'run',
    config: {
      printIdentity: values['print-identity'] === true,
      signalingUrl:
        values.signaling !== undefined
          ? webSocketUrl('--signaling', values.signaling)
          : webSocketUrl('UNDERPASS_SIGNALING_URL', env['UNDERPASS_SIGNALING_URL'] || DEFAULT_SIGNALING_URL),
      dataDir,
      keyFile: values['key-file'],
      certificate:
        values.certificate ?? (env['UNDERPASS_EXIT_CERTIFICATE'] || join(dataDir, 'exit-certificate.json')),
      allowDestinations,
      allowPorts,
      denyPorts,
      bindAddress: ipAddress('bind-address', values['bind-address']),
      ownAddresses: (values['own-address'] ?? []).map((address) => ipAddress('own-address', address) ?? ''),
      capacity: wholeNumber('capacity', values.capacity, 1, 1000),
      maxSessions: wholeNumber('max-sessions', values['max-sessions'], 1, 100_000),
      maxStreamsPerSession: wholeNumber('max-streams', values['max-streams'], 1, 4096),
      lanes: wholeNumber('lanes', values.lanes, 1, MAX_LANES),
      connectTimeoutMs: seconds('connect-timeout', values['connect-timeout']),
      limits: {
        ...(dialTimeoutMs === undefined ? {} : { dialTimeoutMs }),
        ...(streamIdleTimeoutMs === undefined ? {} : { streamIdleTimeoutMs }),
        ...(bytesPerSecond === undefined ? {} : { bytesPerSecond }),
      },
      iceServers: (values['ice-server'] ?? []).map(iceServer),
      ...(values.torrents
        ? {
            torrents: {
              dir: values['torrent-dir'] ?? join(dataDir, 'torrents'),
              listenPort: torrentPort ?? DEFAULT_TORRENT_LISTEN_PORT,
              dht: !values['torrent-no-dht'],
              limits: torrentLimits,
            },
          }
        : {}),
    },
  };
}
