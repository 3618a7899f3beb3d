import {
  decodePairingCode as checkPairingCode,
  MAX_DATA_PORT_SECRET_LENGTH,
  MIN_DATA_PORT_SECRET_LENGTH,
  type Pairing,
  type PairingCodeProblem,
} from '@underpass/shared/data-port';

/**
 * The pairing code of a companion started by hand (`underpass-companion serve`), for where native messaging
 * cannot work. Its format and limits are the data port's protocol (shared/src/data-port/protocol.ts), which the
 * companion prints with; what is here is the wording, so that the user learns what is wrong with a paste.
 */

export type PairingCheck = { ok: true; pairing: Pairing } | { ok: false; reason: string };

const SERVE = 'underpass-companion serve';

const REASONS: Record<PairingCodeProblem, string> = {
  empty: `Paste the pairing code that ${SERVE} printed.`,
  'too-long': 'This is too long to be a pairing code.',
  'not-base64url':
    'This is not a pairing code: a code is one line of letters, digits, "-" and "_", with no spaces.',
  'not-json-object': `This is not a pairing code (it does not decode). Copy the whole line that ${SERVE} printed.`,
  'bad-data-port': "The pairing code's dataPort is not a port number from 1 to 65535.",
  'bad-socks-port': "The pairing code's socksPort is not a port number from 1 to 65535.",
  'bad-secret': `The pairing code's secret is malformed (expected ${MIN_DATA_PORT_SECRET_LENGTH}–${MAX_DATA_PORT_SECRET_LENGTH} base64url characters).`,
  'same-port': 'The pairing code names the same port twice; a companion uses two.',
};

export function decodePairingCode(input: string): PairingCheck {
  const checked = checkPairingCode(input);
  return checked.ok ? checked : { ok: false, reason: REASONS[checked.problem] };
}
