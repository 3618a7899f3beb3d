import { z } from 'zod';

/**
 * The pairing code of a hand-started companion (`underpass-companion serve`): what native messaging would
 * have handed the extension, as one line to paste into its options page. It holds the per-run secret, so it
 * is good for this run only and must not be shared.
 *
 * Format: base64url (no padding) of the UTF-8 JSON `{"dataPort":N,"socksPort":N,"secret":"..."}`.
 */
export interface PairingInfo {
  dataPort: number;
  socksPort: number;
  secret: string;
}

const port = z.number().int().min(1).max(65535);
const pairingSchema = z.object({ dataPort: port, socksPort: port, secret: z.string().min(16).max(512) });

export function encodePairingCode(info: PairingInfo): string {
  const json = JSON.stringify({ dataPort: info.dataPort, socksPort: info.socksPort, secret: info.secret });
  return Buffer.from(json, 'utf8').toString('base64url');
}

/** Undefined for anything that is not a pairing code. */
export function decodePairingCode(code: string): PairingInfo | undefined {
  const trimmed = code.trim();
  if (trimmed.length === 0 || trimmed.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(trimmed)) return undefined;
  try {
    const parsed = pairingSchema.safeParse(JSON.parse(Buffer.from(trimmed, 'base64url').toString('utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
