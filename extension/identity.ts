/**
 * Who the extension is to the browsers, defined once: the build's manifest (wxt.config.ts), the companion's
 * native-messaging manifests (which must name the extension before the browser starts), `npm start`'s
 * directions and the tests all read it here.
 *
 * Chrome derives the id from the public half of the signing key, so every build and every test profile gets
 * the same id (e2e/smoke.spec.ts checks the derivation). The private key is kept outside the repository; it
 * is only needed to pack a .crx.
 */
export const EXTENSION_KEY =
  'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsfOZUD4o2aNfKjlsEb6KCvLPRjNmKQFkaLGJCDbQnlEE5QspUc+YO23nBaSZmiZFXfgYGeaskIRRaA//HDQlCViTRl4AT/0mHVxx8c8r4SAy6xxzf97YsRpAB0hxyyAeW0xogLD6I4Ts1H2gNMOnKA2+v0HDeIh2DquAbxBdzyvYZdL3rfIOKtWCyndyNu746n0MfYXi0eZKy+fxUnJEakxrWnZGkX/h/QURAh2Vns425Zl1rWXEhATEqPGZ65xjQjm2Fi5BXMzwAa71n8gLFqJYlwPk8plea6JHcpc845b/Jjts5kIs6QPtttJGoPzoKUHha8tHf540JVNbt5BxawIDAQAB';

export const EXTENSION_ID = 'jkcdjjbklpjjofcjofiajldbphceeojk';

/** Firefox needs a fixed add-on id for native messaging (`allowed_extensions` in the host manifest). */
export const GECKO_ID = 'underpass@underpass.invalid';
