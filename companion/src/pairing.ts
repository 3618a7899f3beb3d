/**
 * The pairing code of a hand-started companion (`underpass-companion serve`): what native messaging would
 * have handed the extension, as one line to paste into its options page. It holds the per-run secret, so it
 * is good for this run only and must not be shared. The format is the data port's protocol
 * (shared/src/data-port/protocol.ts), which the extension parses with the same code.
 */
import { decodePairingCode as checkPairingCode, type Pairing } from '@underpass/shared/data-port';

export { encodePairingCode } from '@underpass/shared/data-port';
export type PairingInfo = Pairing;

/** Undefined for anything that is not a pairing code. */
export function decodePairingCode(code: string): PairingInfo | undefined {
  const checked = checkPairingCode(code);
  return checked.ok ? checked.pairing : undefined;
}
