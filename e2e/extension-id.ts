import { createHash } from 'node:crypto';

/**
 * The public key in the extension's manifest (wxt.config.ts) and the id Chrome derives from it. The
 * companion's native-messaging manifest names this id, so it must be known before the browser starts.
 */
export const EXTENSION_KEY =
  'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsfOZUD4o2aNfKjlsEb6KCvLPRjNmKQFkaLGJCDbQnlEE5QspUc+YO23nBaSZmiZFXfgYGeaskIRRaA//HDQlCViTRl4AT/0mHVxx8c8r4SAy6xxzf97YsRpAB0hxyyAeW0xogLD6I4Ts1H2gNMOnKA2+v0HDeIh2DquAbxBdzyvYZdL3rfIOKtWCyndyNu746n0MfYXi0eZKy+fxUnJEakxrWnZGkX/h/QURAh2Vns425Zl1rWXEhATEqPGZ65xjQjm2Fi5BXMzwAa71n8gLFqJYlwPk8plea6JHcpc845b/Jjts5kIs6QPtttJGoPzoKUHha8tHf540JVNbt5BxawIDAQAB';

export const EXTENSION_ID = 'jkcdjjbklpjjofcjofiajldbphceeojk';

/** Chrome's rule: sha256 of the DER public key, first 32 hex digits, each mapped 0-f → a-p. */
export function extensionIdFromKey(base64Der: string): string {
  const hex = createHash('sha256').update(Buffer.from(base64Der, 'base64')).digest('hex').slice(0, 32);
  return [...hex].map((digit) => String.fromCharCode('a'.charCodeAt(0) + parseInt(digit, 16))).join('');
}
