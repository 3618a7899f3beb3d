import { z } from 'zod';

/**
 * The pairing code of a companion started by hand (`underpass-companion serve`), for where native messaging
 * cannot work. It carries what the native `ready` line would have: the two ports and the per-run secret.
 *
 * The format is the companion's (companion/src/pairing.ts), written again here because the extension must not
 * import Node code: base64url without padding of the UTF-8 JSON `{"dataPort":N,"socksPort":N,"secret":"…"}`.
 * A pasted code is hostile input like any other: bounded, decoded strictly, and checked field by field so the
 * user learns what is wrong with it.
 */

/** A generated secret is 43 characters; the cap matches what the offscreen command accepts. */
export const MIN_SECRET_LENGTH = 16;
export const MAX_SECRET_LENGTH = 256;
/** Generous for two ports and a 256-character secret once base64url grows it by a third. */
export const MAX_CODE_LENGTH = 512;

const port = z.number().int().min(1).max(65535);
const secret = z
  .string()
  .min(MIN_SECRET_LENGTH)
  .max(MAX_SECRET_LENGTH)
  .regex(/^[A-Za-z0-9_-]+$/);

export const pairingSchema = z.object({ dataPort: port, socksPort: port, secret });
export type Pairing = z.infer<typeof pairingSchema>;

export type PairingCheck = { ok: true; pairing: Pairing } | { ok: false; reason: string };

const SERVE = 'underpass-companion serve';

export function decodePairingCode(input: string): PairingCheck {
  const code = input.trim();
  if (code.length === 0) {
    return { ok: false, reason: `Paste the pairing code that ${SERVE} printed.` };
  }
  if (code.length > MAX_CODE_LENGTH) {
    return { ok: false, reason: 'This is too long to be a pairing code.' };
  }
  if (!/^[A-Za-z0-9_-]+$/.test(code)) {
    return {
      ok: false,
      reason:
        'This is not a pairing code: a code is one line of letters, digits, "-" and "_", with no spaces.',
    };
  }
  const json = base64UrlToText(code);
  let value: unknown;
  try {
    value = json === undefined ? undefined : JSON.parse(json);
  } catch {
    value = undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      ok: false,
      reason: `This is not a pairing code (it does not decode). Copy the whole line that ${SERVE} printed.`,
    };
  }
  const fields = value as Record<string, unknown>;
  for (const name of ['dataPort', 'socksPort'] as const) {
    if (!port.safeParse(fields[name]).success) {
      return { ok: false, reason: `The pairing code's ${name} is not a port number from 1 to 65535.` };
    }
  }
  if (!secret.safeParse(fields['secret']).success) {
    return {
      ok: false,
      reason: `The pairing code's secret is malformed (expected ${MIN_SECRET_LENGTH}–${MAX_SECRET_LENGTH} base64url characters).`,
    };
  }
  const pairing = pairingSchema.parse(fields);
  if (pairing.dataPort === pairing.socksPort) {
    return { ok: false, reason: 'The pairing code names the same port twice; a companion uses two.' };
  }
  return { ok: true, pairing };
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
    const binary = atob(base64);
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}
