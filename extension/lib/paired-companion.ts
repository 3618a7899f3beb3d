import { Emitter } from '@underpass/shared/emitter';
import type { CompanionFailure, CompanionHandle, CompanionOpenResult } from './companion-port';
import { truncateReason } from './switch-error';
import type { Pairing } from '@underpass/shared/data-port';

/**
 * A companion the user started by hand (`underpass-companion serve`) and paired with its one-time code. There
 * is no native port to open or keep: the code already holds what `ready` would say, and whether the companion
 * is really there shows when the offscreen document dials its data port with the secret. So the failures
 * worth explaining come from that connection, and `explainPairedFailure` words them for this case.
 */

export const SERVE_COMMAND =
  'npx underpass-companion serve (from a source checkout: node companion/bin/underpass-companion.js serve)';

export class PairedCompanion
  extends Emitter<{ closed: [failure: CompanionFailure] }>
  implements CompanionHandle
{
  constructor(private readonly pairing: Pairing) {
    super();
  }

  open(): Promise<CompanionOpenResult> {
    const { socksPort, dataPort, secret } = this.pairing;
    return Promise.resolve({ ok: true, ready: { type: 'ready', version: 1, socksPort, dataPort, secret } });
  }

  /** Nothing to release: the companion belongs to whoever started it and keeps running. */
  close(): void {}
}

/**
 * Rewords a failure of the data connection for a paired companion, whose cure is not the native one ("turn
 * Protect off and on" restarts nothing here). Other failures (signaling, path) pass through unchanged.
 */
export function explainPairedFailure(failure: CompanionFailure, pairing: Pairing): CompanionFailure {
  const where = `127.0.0.1:${pairing.dataPort}`;
  switch (failure.code) {
    case 'companion-unreachable':
    case 'companion-timeout':
      return {
        code: 'paired-companion-not-running',
        reason: truncateReason(
          `The companion you paired is not running (nothing answers on ${where}): start it with ${SERVE_COMMAND}, then paste the new pairing code it prints in the Underpass settings page.`,
        ),
      };
    case 'companion-unauthorized':
      return {
        code: 'paired-companion-refused',
        reason: truncateReason(
          `The companion on ${where} refused the pairing code, which belongs to an earlier run: paste the code the running companion printed in the Underpass settings page.`,
        ),
      };
    case 'companion-closed':
      return {
        code: 'paired-companion-stopped',
        reason: truncateReason(
          `The companion you paired stopped: start it again with ${SERVE_COMMAND} and paste its new pairing code in the Underpass settings page.`,
        ),
      };
    default:
      return failure;
  }
}
