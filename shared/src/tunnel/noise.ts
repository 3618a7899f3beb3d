import { x25519 } from '@noble/curves/ed25519.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { SessionError } from '../errors.js';
import { concatBytes, utf8 } from '../bytes.js';

/**
 * The end-to-end session handshake: Noise_NK_25519_ChaChaPoly_SHA256 (Noise spec rev. 34, §7.4 pattern NK).
 * The client knows the exit's static key from the directory; the exit learns nothing about the client. Every
 * primitive comes from the audited @noble libraries; this file only follows the Noise state machine.
 *
 *   NK:  <- s
 *        ...
 *        -> e, es
 *        <- e, ee
 */
const PROTOCOL_NAME = utf8('Noise_NK_25519_ChaChaPoly_SHA256'); // exactly 32 bytes: used as h directly
const PROLOGUE = utf8('underpass/1');
export const KEY_BYTES = 32;
const TAG_BYTES = 16;
/** Largest plaintext in one transport message (Noise caps messages at 65535 bytes). */
export const MAX_NOISE_PLAINTEXT = 65535 - TAG_BYTES;

export interface StaticKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

export function generateStaticKeyPair(): StaticKeyPair {
  const { secretKey, publicKey } = x25519.keygen();
  return { secretKey, publicKey };
}

export function publicKeyFromSecret(secretKey: Uint8Array): Uint8Array {
  return x25519.getPublicKey(secretKey);
}

function hkdf2(chainingKey: Uint8Array, inputKeyMaterial: Uint8Array): [Uint8Array, Uint8Array] {
  const tempKey = hmac(sha256, chainingKey, inputKeyMaterial);
  const out1 = hmac(sha256, tempKey, Uint8Array.of(1));
  const out2 = hmac(sha256, tempKey, concatBytes(out1, Uint8Array.of(2)));
  return [out1, out2];
}

function nonceBytes(counter: number): Uint8Array {
  // 32 bits of zeros, then the 64-bit little-endian counter. Counters here never exceed 2^53.
  const nonce = new Uint8Array(12);
  let n = counter;
  for (let i = 4; i < 12; i++) {
    nonce[i] = n % 256;
    n = Math.floor(n / 256);
  }
  return nonce;
}

/**
 * ChaCha20-Poly1305 as the session uses it. The default is @noble/ciphers (pure JS, runs everywhere); a Node
 * host may inject node:crypto's, which is several times faster (bench/tunnel). Both are RFC 8439.
 */
export interface Aead {
  seal(key: Uint8Array, nonce: Uint8Array, associatedData: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** Returns undefined when authentication fails. */
  open(
    key: Uint8Array,
    nonce: Uint8Array,
    associatedData: Uint8Array,
    ciphertext: Uint8Array,
  ): Uint8Array | undefined;
}

export const nobleAead: Aead = {
  seal: (key, nonce, associatedData, plaintext) =>
    chacha20poly1305(key, nonce, associatedData).encrypt(plaintext),
  open: (key, nonce, associatedData, ciphertext) => {
    try {
      return chacha20poly1305(key, nonce, associatedData).decrypt(ciphertext);
    } catch {
      return undefined;
    }
  },
};

/** One direction of transport encryption. The implicit counter makes replayed, dropped or reordered messages fail. */
export class CipherState {
  private counter = 0;

  constructor(
    private readonly key: Uint8Array,
    private readonly aead: Aead = nobleAead,
  ) {}

  encrypt(plaintext: Uint8Array, associatedData: Uint8Array = new Uint8Array(0)): Uint8Array {
    const out = this.aead.seal(this.key, nonceBytes(this.counter), associatedData, plaintext);
    this.counter += 1;
    return out;
  }

  /** Throws SessionError('tampered') when authentication fails; the counter does not advance then. */
  decrypt(ciphertext: Uint8Array, associatedData: Uint8Array = new Uint8Array(0)): Uint8Array {
    if (ciphertext.length < TAG_BYTES) throw new SessionError('tampered', 'ciphertext shorter than its tag');
    const plaintext = this.aead.open(this.key, nonceBytes(this.counter), associatedData, ciphertext);
    if (!plaintext) {
      throw new SessionError(
        'tampered',
        'message failed authentication (tampered, replayed or out of order)',
      );
    }
    this.counter += 1;
    return plaintext;
  }
}

class SymmetricState {
  constructor(private readonly aead: Aead) {}

  private h: Uint8Array = PROTOCOL_NAME.slice();
  private ck: Uint8Array = PROTOCOL_NAME.slice();
  private cipher: CipherState | undefined;

  mixHash(data: Uint8Array): void {
    this.h = sha256(concatBytes(this.h, data));
  }

  mixKey(inputKeyMaterial: Uint8Array): void {
    const [ck, key] = hkdf2(this.ck, inputKeyMaterial);
    this.ck = ck;
    this.cipher = new CipherState(key, this.aead);
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.cipher ? this.cipher.encrypt(plaintext, this.h) : plaintext;
    this.mixHash(ciphertext);
    return ciphertext;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.cipher ? this.cipher.decrypt(ciphertext, this.h) : ciphertext;
    this.mixHash(ciphertext);
    return plaintext;
  }

  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf2(this.ck, new Uint8Array(0));
    return [new CipherState(k1, this.aead), new CipherState(k2, this.aead)];
  }

  get handshakeHash(): Uint8Array {
    return this.h;
  }
}

export interface TransportKeys {
  send: CipherState;
  receive: CipherState;
  /** Binds the session: equal on both ends only if nobody interfered. */
  handshakeHash: Uint8Array;
}

function dh(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  try {
    return x25519.getSharedSecret(secretKey, publicKey);
  } catch {
    // noble rejects low-order points: a peer sending one is attacking the handshake.
    throw new SessionError('handshake-failed', 'invalid ephemeral key');
  }
}

/** Client side: knows the exit's static public key. */
export class NoiseInitiator {
  private readonly state: SymmetricState;
  private readonly ephemeral = x25519.keygen();
  private stage: 'start' | 'sent' | 'done' = 'start';

  constructor(
    private readonly remoteStaticKey: Uint8Array,
    aead: Aead = nobleAead,
  ) {
    this.state = new SymmetricState(aead);
    if (remoteStaticKey.length !== KEY_BYTES)
      throw new SessionError('wrong-exit', 'exit key must be 32 bytes');
    this.state.mixHash(PROLOGUE);
    this.state.mixHash(remoteStaticKey);
  }

  /** -> e, es */
  writeHello(payload: Uint8Array = new Uint8Array(0)): Uint8Array {
    if (this.stage !== 'start') throw new Error('hello already written');
    this.stage = 'sent';
    this.state.mixHash(this.ephemeral.publicKey);
    this.state.mixKey(dh(this.ephemeral.secretKey, this.remoteStaticKey));
    return concatBytes(this.ephemeral.publicKey, this.state.encryptAndHash(payload));
  }

  /** <- e, ee. Throws SessionError('handshake-failed') if the reply does not come from the holder of the key. */
  readReply(message: Uint8Array): { keys: TransportKeys; payload: Uint8Array } {
    if (this.stage !== 'sent') throw new Error('reply read out of order');
    if (message.length < KEY_BYTES + TAG_BYTES)
      throw new SessionError('handshake-failed', 'handshake reply truncated');
    this.stage = 'done';
    const remoteEphemeral = message.subarray(0, KEY_BYTES);
    this.state.mixHash(remoteEphemeral);
    this.state.mixKey(dh(this.ephemeral.secretKey, remoteEphemeral));
    let payload: Uint8Array;
    try {
      payload = this.state.decryptAndHash(message.subarray(KEY_BYTES));
    } catch {
      throw new SessionError('handshake-failed', 'handshake reply failed authentication');
    }
    const [send, receive] = this.state.split();
    return { keys: { send, receive, handshakeHash: this.state.handshakeHash }, payload };
  }
}

/** Exit side: holds the static key pair. */
export class NoiseResponder {
  private readonly state: SymmetricState;
  private readonly ephemeral = x25519.keygen();
  private remoteEphemeral: Uint8Array | undefined;

  constructor(
    private readonly staticKey: StaticKeyPair,
    aead: Aead = nobleAead,
  ) {
    this.state = new SymmetricState(aead);
    this.state.mixHash(PROLOGUE);
    this.state.mixHash(staticKey.publicKey);
  }

  /** Reads -> e, es. A client that used another exit's key fails here with `wrong-exit`. */
  readHello(message: Uint8Array): Uint8Array {
    if (this.remoteEphemeral) throw new Error('hello already read');
    if (message.length < KEY_BYTES + TAG_BYTES)
      throw new SessionError('handshake-failed', 'handshake hello truncated');
    this.remoteEphemeral = message.slice(0, KEY_BYTES);
    this.state.mixHash(this.remoteEphemeral);
    this.state.mixKey(dh(this.staticKey.secretKey, this.remoteEphemeral));
    try {
      return this.state.decryptAndHash(message.subarray(KEY_BYTES));
    } catch {
      throw new SessionError('wrong-exit', 'handshake hello was not made for this exit key');
    }
  }

  /** <- e, ee */
  writeReply(payload: Uint8Array = new Uint8Array(0)): { message: Uint8Array; keys: TransportKeys } {
    if (!this.remoteEphemeral) throw new Error('reply before hello');
    this.state.mixHash(this.ephemeral.publicKey);
    this.state.mixKey(dh(this.ephemeral.secretKey, this.remoteEphemeral));
    const message = concatBytes(this.ephemeral.publicKey, this.state.encryptAndHash(payload));
    const [receive, send] = this.state.split();
    return { message, keys: { send, receive, handshakeHash: this.state.handshakeHash } };
  }
}
