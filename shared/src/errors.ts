/**
 * Errors are values with codes: every failure that crosses a module boundary is an UnderpassError whose
 * `code` a user-facing message can be built from. The code sets are closed unions so a switch over them is
 * checked by the compiler.
 */

/** Why a single stream failed. Sent on the wire in RESET and OPEN_FAILED frames (see PROTOCOL.md). */
export const STREAM_ERROR_CODES = [
  'policy-denied',
  'dns-failed',
  'refused',
  'timeout',
  'unreachable',
  'limit',
  'reset',
  'protocol',
  'session-closed',
  // Appended, not inserted: a code's wire value is its index. Torrent streams (PROTOCOL.md §4, torrent):
  /** The exit does not serve torrents. */
  'torrents-off',
  /** The exit could not get the torrent's metadata in time. */
  'metadata-timeout',
  /** The torrent (or the files asked for) is over the exit's size budget. */
  'too-large',
] as const;
export type StreamErrorCode = (typeof STREAM_ERROR_CODES)[number];

/**
 * The codes by which the exit refuses a destination when it tries to reach it (its policy, its DNS, the server
 * refusing or not answering, no route), as opposed to the path or this side failing (`reset`, `session-closed`,
 * `limit`, `protocol`).
 */
const DESTINATION_REFUSALS: ReadonlySet<string> = new Set<StreamErrorCode>([
  'policy-denied',
  'dns-failed',
  'refused',
  'timeout',
  'unreachable',
]);

export function isDestinationRefusal(code: string): boolean {
  return DESTINATION_REFUSALS.has(code);
}

/** Why a whole end-to-end session (or circuit) ended. */
export const SESSION_ERROR_CODES = [
  'malformed-frame',
  'frame-too-large',
  'unknown-stream',
  'window-overrun',
  'too-many-streams',
  'tampered',
  'handshake-failed',
  'handshake-timeout',
  'wrong-exit',
  'link-closed',
  'circuit-closed',
  'closed',
  // Appended, not inserted: a code's wire value is its index.
  'limit',
  /** The exit's certificate is missing or not valid under the client's directory keys (PROTOCOL.md §3). */
  'untrusted-exit',
] as const;
export type SessionErrorCode = (typeof SESSION_ERROR_CODES)[number];

export type ErrorCode = StreamErrorCode | SessionErrorCode | (string & {});

export class UnderpassError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'UnderpassError';
  }
}

export class StreamError extends UnderpassError {
  constructor(
    override readonly code: StreamErrorCode,
    message: string = code,
  ) {
    super(code, message);
    this.name = 'StreamError';
  }
}

export class SessionError extends UnderpassError {
  constructor(
    override readonly code: SessionErrorCode,
    message: string = code,
  ) {
    super(code, message);
    this.name = 'SessionError';
  }
}

export function streamErrorFromIndex(index: number): StreamErrorCode | undefined {
  return STREAM_ERROR_CODES[index];
}

export function streamErrorIndex(code: StreamErrorCode): number {
  return STREAM_ERROR_CODES.indexOf(code);
}

export function sessionErrorFromIndex(index: number): SessionErrorCode | undefined {
  return SESSION_ERROR_CODES[index];
}

export function sessionErrorIndex(code: SessionErrorCode): number {
  return SESSION_ERROR_CODES.indexOf(code);
}

/**
 * Any thrown value as an UnderpassError: an UnderpassError as it is, anything else under `fallbackCode` with
 * its message. For the places where a failure leaves our code (a state, a reply, a log line).
 */
export function toUnderpassError(error: unknown, fallbackCode: ErrorCode = 'internal'): UnderpassError {
  if (error instanceof UnderpassError) return error;
  return new UnderpassError(fallbackCode, errorMessage(error));
}

/** The message of any thrown value, for a log line or an error of our own. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
