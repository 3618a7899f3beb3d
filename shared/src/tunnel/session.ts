import { Emitter } from '../emitter.js';
import { errorMessage, SessionError } from '../errors.js';
import { bytesEqual } from '../bytes.js';
import { DEFAULT_SESSION_WINDOW, Mux, type MuxOptions } from './mux.js';
import {
  NoiseInitiator,
  NoiseResponder,
  type Aead,
  type StaticKeyPair,
  type TransportKeys,
} from './noise.js';
import { MAX_MUX_FRAME } from './mux-frames.js';
import { checkExitCertificate, type ExitTrust } from '../trust/exit-trust.js';

/** Time for the Noise handshake, from the session's creation: the client's hello and the exit's reply. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 15_000;

/** How a session reaches its peer: one circuit on a link. Messages are opaque to everything in between. */
export interface SessionTransport {
  send(message: Uint8Array): void;
  /** False while the link is congested. */
  canSend(): boolean;
}

export type SessionOptions = {
  transport: SessionTransport;
  handshakeTimeoutMs?: number;
  /** The cipher implementation; default @noble/ciphers. */
  aead?: Aead;
  mux?: Pick<
    MuxOptions,
    'initialWindow' | 'maxStreams' | 'openTimeoutMs' | 'sessionWindow' | 'receiveBudget' | 'clock'
  >;
} & (
  | {
      role: 'client';
      exitKey: Uint8Array;
      /** The directory keys the exit's certificate must verify under, checked before any frame is sent. */
      trust: ExitTrust;
    }
  | {
      role: 'exit';
      staticKey: StaticKeyPair;
      /** The exit's certificate, sent in every handshake reply; read per session so a renewal applies at once. */
      certificate: () => Uint8Array;
    }
);

export type SessionEvents = {
  ready: [];
  close: [error?: SessionError];
};

type Phase =
  | { name: 'client-handshake'; noise: NoiseInitiator }
  | { name: 'exit-handshake'; noise: NoiseResponder }
  | { name: 'established'; keys: TransportKeys }
  | { name: 'closed' };

/**
 * The end-to-end encrypted session between a client and an exit (PROTOCOL.md §Session): a Noise NK handshake,
 * then every mux frame sealed in one transport message. Any message that fails authentication — tampered,
 * replayed, reordered or meant for another key — ends the session with a typed error.
 */
export class SecureSession extends Emitter<SessionEvents> {
  readonly mux: Mux;
  private phase: Phase;
  private readonly handshakeTimer: ReturnType<typeof setTimeout>;
  /** Frames the mux sent before the handshake finished (only OPENs, so at most maxStreams of them). */
  private readonly early: Uint8Array[] = [];

  constructor(private readonly options: SessionOptions) {
    super();
    const transport = options.transport;
    this.mux = new Mux({
      sessionWindow: DEFAULT_SESSION_WINDOW,
      ...options.mux,
      role: options.role === 'client' ? 'initiator' : 'acceptor',
      send: (frame) => this.sendSealed(frame),
      canSend: () => transport.canSend(),
    });
    this.mux.on('close', (error) => this.close(error));
    this.handshakeTimer = setTimeout(
      () => this.close(new SessionError('handshake-timeout', 'no handshake in time')),
      options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    );
    if (options.role === 'client') {
      const noise = new NoiseInitiator(options.exitKey, options.aead);
      this.phase = { name: 'client-handshake', noise };
      transport.send(noise.writeHello());
    } else {
      this.phase = { name: 'exit-handshake', noise: new NoiseResponder(options.staticKey, options.aead) };
    }
  }

  get established(): boolean {
    return this.phase.name === 'established';
  }

  get closed(): boolean {
    return this.phase.name === 'closed';
  }

  /** Resolves once the handshake completes; rejects with the SessionError that ended it otherwise. */
  whenReady(): Promise<void> {
    if (this.phase.name === 'established') return Promise.resolve();
    if (this.phase.name === 'closed') return Promise.reject(this.mux.error ?? new SessionError('closed'));
    return new Promise((resolve, reject) => {
      const onReady = () => {
        this.off('close', onClose);
        resolve();
      };
      const onClose = (error?: SessionError) => {
        this.off('ready', onReady);
        reject(error ?? new SessionError('closed'));
      };
      this.once('ready', onReady);
      this.once('close', onClose);
    });
  }

  /** One message from the peer (a DATA cell's payload). Never throws: failures close the session. */
  receive(message: Uint8Array): void {
    try {
      this.receiveUnsafe(message);
    } catch (error) {
      this.close(
        error instanceof SessionError ? error : new SessionError('malformed-frame', errorMessage(error)),
      );
    }
  }

  /** The transport can take more. */
  drain(): void {
    this.mux.drain();
  }

  close(error?: SessionError): void {
    if (this.phase.name === 'closed') return;
    this.phase = { name: 'closed' };
    this.early.length = 0;
    clearTimeout(this.handshakeTimer);
    this.mux.close(error);
    this.emit('close', error);
  }

  private receiveUnsafe(message: Uint8Array): void {
    const phase = this.phase;
    switch (phase.name) {
      case 'client-handshake': {
        const { keys, payload } = phase.noise.readReply(message);
        if (this.options.role === 'client') {
          // Noise NK has proved the far end holds exitKey; the certificate says a directory vouches for
          // that key. Until both hold, nothing queued (`early`) leaves: a close here drops it unsent.
          const check = checkExitCertificate(payload, this.options.exitKey, this.options.trust);
          if (!check.ok) throw check.error;
        }
        this.establish(keys);
        return;
      }
      case 'exit-handshake': {
        phase.noise.readHello(message);
        const certificate = this.options.role === 'exit' ? this.options.certificate() : new Uint8Array(0);
        const { message: reply, keys } = phase.noise.writeReply(certificate);
        this.options.transport.send(reply);
        this.establish(keys);
        return;
      }
      case 'established': {
        if (message.length > MAX_MUX_FRAME + 16)
          throw new SessionError('frame-too-large', 'session message too large');
        this.mux.receive(phase.keys.receive.decrypt(message));
        return;
      }
      case 'closed':
        return;
    }
  }

  private establish(keys: TransportKeys): void {
    clearTimeout(this.handshakeTimer);
    this.phase = { name: 'established', keys };
    for (const frame of this.early.splice(0)) this.options.transport.send(keys.send.encrypt(frame));
    this.emit('ready');
  }

  private sendSealed(frame: Uint8Array): void {
    if (this.phase.name === 'closed') return;
    if (this.phase.name !== 'established') {
      this.early.push(frame);
      return;
    }
    this.options.transport.send(this.phase.keys.send.encrypt(frame));
  }

  /** For tests and diagnostics: both ends compute the same hash only if nobody interfered. */
  sameHandshakeAs(other: SecureSession): boolean {
    return (
      this.phase.name === 'established' &&
      other.phase.name === 'established' &&
      bytesEqual(this.phase.keys.handshakeHash, other.phase.keys.handshakeHash)
    );
  }
}
