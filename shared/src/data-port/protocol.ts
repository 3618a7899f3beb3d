import { z } from 'zod';

/**
 * The companion's data port (PROTOCOL.md §4'), the one definition both ends use: the close codes, the hello
 * that authenticates the extension, the per-run secret and the pairing code that carries it to a companion
 * started by hand. Browser-safe (no Buffer): the extension parses the same pairing codes the companion prints.
 */

/** The data port's WebSocket close codes. */
export const DataPortCloseCode = {
  /** A clean close with nothing to report. */
  normal: 1000,
  /** The companion is shutting down. */
  goingAway: 1001,
  /** The extension's side refused what it received (a text frame, a message over the size limit). */
  extensionError: 4000,
  /** The companion's side: a text message after the hello, or a mux protocol violation. */
  protocol: 4400,
  /** A wrong, missing or late hello. */
  unauthorized: 4401,
  /** Another authenticated connection took over. */
  replaced: 4409,
} as const;

/** Each message carries exactly one mux frame; larger ones are refused (1009 from `ws` on the companion). */
export const DATA_PORT_MAX_MESSAGE_BYTES = 64 * 1024;

/** A generated secret is 43 characters (32 random bytes); the bounds are those of any secret we accept. */
export const MIN_DATA_PORT_SECRET_LENGTH = 16;
export const MAX_DATA_PORT_SECRET_LENGTH = 512;
/** A pairing code (two ports and a secret of at most 512 characters, base64url-grown by a third) fits in this. */
export const MAX_PAIRING_CODE_LENGTH = 2048;

const BASE64URL = /^[A-Za-z0-9_-]+$/;

const portSchema = z.number().int().min(1).max(65535);

/** The per-run secret as the companion hands it out (native `ready`, pairing code). */
export const dataPortSecretSchema = z
  .string()
  .min(MIN_DATA_PORT_SECRET_LENGTH)
  .max(MAX_DATA_PORT_SECRET_LENGTH)
  .regex(BASE64URL);

/** The first message on the data port: a text frame. The secret itself is checked by comparing it. */
export const dataPortHelloSchema = z.object({
  type: z.literal('hello'),
  secret: z.string().min(1).max(MAX_DATA_PORT_SECRET_LENGTH),
});
export type DataPortHello = z.infer<typeof dataPortHelloSchema>;

export function encodeDataPortHello(secret: string): string {
  return JSON.stringify({ type: 'hello', secret } satisfies DataPortHello);
}

/** The hello in a text frame, or undefined for anything else. */
export function parseDataPortHello(text: string): DataPortHello | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const hello = dataPortHelloSchema.safeParse(value);
  return hello.success ? hello.data : undefined;
}

/** What a hand-started companion prints for the extension: what native messaging would have said. */
export const pairingSchema = z.object({
  dataPort: portSchema,
  socksPort: portSchema,
  secret: dataPortSecretSchema,
});
export type Pairing = z.infer<typeof pairingSchema>;

/** Why a pasted text is not a pairing code, in the order they are checked; the extension words each. */
export type PairingCodeProblem =
  | 'empty'
  | 'too-long'
  | 'not-base64url'
  | 'not-json-object'
  | 'bad-data-port'
  | 'bad-socks-port'
  | 'bad-secret'
  | 'same-port';

export type PairingCodeCheck = { ok: true; pairing: Pairing } | { ok: false; problem: PairingCodeProblem };

/** Base64url without padding of the UTF-8 JSON `{"dataPort":N,"socksPort":N,"secret":"…"}`. */
export function encodePairingCode(pairing: Pairing): string {
  const json = JSON.stringify({
    dataPort: pairing.dataPort,
    socksPort: pairing.socksPort,
    secret: pairing.secret,
  });
  return bytesToBase64Url(new TextEncoder().encode(json));
}

/**
 * A pasted code is hostile input like any other: bounded, decoded strictly, and checked field by field so that
 * the user can learn what is wrong with it. Surrounding whitespace is ignored; unknown fields too.
 */
export function decodePairingCode(input: string): PairingCodeCheck {
  const code = input.trim();
  if (code.length === 0) return { ok: false, problem: 'empty' };
  if (code.length > MAX_PAIRING_CODE_LENGTH) return { ok: false, problem: 'too-long' };
  if (!BASE64URL.test(code)) return { ok: false, problem: 'not-base64url' };
  const value = parseJson(base64UrlToText(code));
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, problem: 'not-json-object' };
  }
  const fields = value as Record<string, unknown>;
  if (!portSchema.safeParse(fields['dataPort']).success) return { ok: false, problem: 'bad-data-port' };
  if (!portSchema.safeParse(fields['socksPort']).success) return { ok: false, problem: 'bad-socks-port' };
  if (!dataPortSecretSchema.safeParse(fields['secret']).success) return { ok: false, problem: 'bad-secret' };
  const pairing = pairingSchema.parse(fields);
  if (pairing.dataPort === pairing.socksPort) return { ok: false, problem: 'same-port' };
  return { ok: true, pairing };
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function bytesToBase64Url(bytes: Uint8Array): string {
  const binary = Array.from(bytes, (byte) => String.fromCharCode(byte)).join('');
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Strict base64url (no padding) → UTF-8 text; undefined for anything that is not exactly that. */
function base64UrlToText(code: string): string | undefined {
  // A single leftover character cannot encode a byte: that is a truncated code, not a short one.
  if (code.length % 4 === 1) return undefined;
  const base64 = code
    .replace(/-/g, '+')
    .replace(/_/g, '/')
    .padEnd(Math.ceil(code.length / 4) * 4, '=');
  try {
    const bytes = Uint8Array.from(atob(base64), (char) => char.charCodeAt(0));
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}
