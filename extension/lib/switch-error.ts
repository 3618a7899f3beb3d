import { z } from 'zod';
import {
  SESSION_ERROR_CODES,
  STREAM_ERROR_CODES,
  UnderpassError,
  errorMessage,
} from '@underpass/shared/errors';
import { SIGNALING_ERROR_CODES } from '@underpass/shared/signaling';

/**
 * The one shape of an error that crosses an extension context (offscreen document → background → popup):
 * a code from a closed list, which the popup can build its words and help from, and a reason in words.
 * Every failure becomes one through `toSwitchError`; a code outside the list is kept only in the reason.
 */

export const MAX_REASON_LENGTH = 500;

/** Codes of the extension's own parts: the companion, the engines' host, the switches. */
const EXTENSION_ERROR_CODES = [
  'companion-missing',
  'companion-forbidden',
  'companion-exited',
  'companion-failed',
  'companion-error',
  'companion-protocol',
  'companion-timeout',
  'companion-unreachable',
  'companion-unauthorized',
  'companion-closed',
  'paired-companion-not-running',
  'paired-companion-refused',
  'paired-companion-stopped',
  'proxy-not-controllable',
  'webrtc-policy-not-controllable',
  'engine-host-lost',
  'no-offscreen',
  'offscreen-unreachable',
  'bad-command',
  'monthly-cap',
  /** Volunteer paused at the volunteer's word: the browser runs on battery, or on a metered connection. */
  'on-battery',
  'metered',
  'protect-failed',
  'volunteer-failed',
  /** Downloads: no exit in the directory serves torrents. */
  'no-torrent-exit',
  'downloads-failed',
  'internal',
] as const;

/** Codes the shared engines and the signaling client raise on their own (beside the wire's code tables). */
const ENGINE_ERROR_CODES = [
  'connect-failed',
  'not-connected',
  'signaling-closed',
  /** ProtectEngine: a path to rebuild while the signaling server is still unreachable (it keeps trying). */
  'signaling-unavailable',
  'bad-exit-key',
  'bad-options',
] as const;

export const SWITCH_ERROR_CODES = [
  ...EXTENSION_ERROR_CODES,
  ...ENGINE_ERROR_CODES,
  ...SIGNALING_ERROR_CODES,
  ...SESSION_ERROR_CODES,
  ...STREAM_ERROR_CODES,
] as const;
export type SwitchErrorCode = (typeof SWITCH_ERROR_CODES)[number];

export const switchErrorCodeSchema = z.enum(SWITCH_ERROR_CODES);
export const reasonSchema = z.string().max(MAX_REASON_LENGTH);
export const switchErrorSchema = z.object({ code: switchErrorCodeSchema, reason: reasonSchema });
export type SwitchError = z.infer<typeof switchErrorSchema>;

const KNOWN_CODES: ReadonlySet<string> = new Set(SWITCH_ERROR_CODES);

export function isSwitchErrorCode(code: string): code is SwitchErrorCode {
  return KNOWN_CODES.has(code);
}

/** An error from any code and words; an unknown code becomes `fallback`, its name kept in the reason. */
export function switchError(
  code: string,
  reason: string,
  fallback: SwitchErrorCode = 'internal',
): SwitchError {
  if (isSwitchErrorCode(code)) return { code, reason: truncateReason(reason || code) };
  return { code: fallback, reason: truncateReason(`${reason || fallback} (${code})`) };
}

/** Any thrown value as a SwitchError: an UnderpassError keeps its code when the list has it. */
export function toSwitchError(error: unknown, fallback: SwitchErrorCode): SwitchError {
  if (error instanceof UnderpassError) return switchError(error.code, error.message, fallback);
  return { code: fallback, reason: truncateReason(errorMessage(error) || fallback) };
}

export function truncateReason(text: string): string {
  return text.length <= MAX_REASON_LENGTH ? text : `${text.slice(0, MAX_REASON_LENGTH - 1)}…`;
}
