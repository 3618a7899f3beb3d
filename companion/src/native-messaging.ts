import type { Readable, Writable } from 'node:stream';
import { z } from 'zod';
import { Emitter } from '@underpass/shared/emitter';
import { UnderpassError } from '@underpass/shared/errors';

/**
 * Chrome/Firefox native messaging on stdin/stdout: each message is a uint32 length (little-endian, the byte
 * order of every platform we run on) and that many bytes of UTF-8 JSON. The browser may send up to 4 GiB; we
 * accept 64 KiB, because nothing the extension says to us is longer than a line. Nothing but framed messages
 * may ever reach stdout: a stray byte there breaks the framing for the browser.
 */

export const MAX_INBOUND_BYTES = 64 * 1024;
/** The browser's own limit for host → browser messages. */
export const MAX_OUTBOUND_BYTES = 1024 * 1024;
export const PROTOCOL_VERSION = 1;

const statusRequest = z.object({ type: z.literal('status') });
export const inboundMessageSchema = z.discriminatedUnion('type', [statusRequest]);
export type InboundMessage = z.infer<typeof inboundMessageSchema>;

export type OutboundMessage =
  | { type: 'ready'; version: typeof PROTOCOL_VERSION; socksPort: number; dataPort: number; secret: string }
  | { type: 'status'; tunnel: boolean; connections: number; blocked: number }
  | { type: 'error'; code: NativeErrorCode; message: string };

export type NativeErrorCode =
  'too-large' | 'malformed' | 'unknown-type' | 'bad-caller' | 'start-failed' | 'internal';

export class NativeMessagingError extends UnderpassError {
  constructor(
    override readonly code: NativeErrorCode,
    message: string,
  ) {
    super(code, message);
    this.name = 'NativeMessagingError';
  }
}

export type DecodedMessage =
  | { ok: true; message: InboundMessage }
  /** Valid JSON with a `type` we do not know: a newer extension. Answered, not fatal. */
  | { ok: false; fatal: false; error: NativeMessagingError }
  /** Broken framing, oversized, not JSON, or not an object with a string `type`: the stream is unusable. */
  | { ok: false; fatal: true; error: NativeMessagingError };

/** Splits the inbound byte stream into messages. Holds at most one message (≤ 64 KiB) plus one chunk. */
export class NativeMessageDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed = false;

  constructor(private readonly maxBytes: number = MAX_INBOUND_BYTES) {}

  /** True while part of a message has been received but not all of it. */
  get partial(): boolean {
    return this.buffered > 0;
  }

  push(chunk: Buffer): DecodedMessage[] {
    if (this.failed) return [];
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: DecodedMessage[] = [];
    while (this.buffered >= 4) {
      const all = this.take();
      const length = all.readUInt32LE(0);
      if (length > this.maxBytes) {
        this.failed = true;
        out.push(fatal('too-large', `message of ${length} bytes; the limit is ${this.maxBytes}`));
        return out;
      }
      if (all.length < 4 + length) break;
      this.chunks = all.length > 4 + length ? [all.subarray(4 + length)] : [];
      this.buffered = all.length - 4 - length;
      const decoded = decodeBody(all.subarray(4, 4 + length));
      out.push(decoded);
      if (!decoded.ok && decoded.fatal) {
        this.failed = true;
        return out;
      }
    }
    return out;
  }

  private take(): Buffer {
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    this.chunks = [all];
    return all;
  }
}

function decodeBody(body: Buffer): DecodedMessage {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return fatal('malformed', 'message is not UTF-8 JSON');
  }
  const parsed = inboundMessageSchema.safeParse(value);
  if (parsed.success) return { ok: true, message: parsed.data };
  const shape = z.object({ type: z.string().max(64) }).safeParse(value);
  if (!shape.success) return fatal('malformed', 'message is not an object with a string "type"');
  const known = inboundMessageSchema.options.some((option) => option.shape.type.value === shape.data.type);
  if (known) return fatal('malformed', `invalid "${shape.data.type}" message`);
  return {
    ok: false,
    fatal: false,
    error: new NativeMessagingError('unknown-type', `unknown message type "${shape.data.type}"`),
  };
}

function fatal(code: NativeErrorCode, message: string): DecodedMessage {
  return { ok: false, fatal: true, error: new NativeMessagingError(code, message) };
}

export function encodeNativeMessage(message: OutboundMessage): Buffer {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  if (body.length > MAX_OUTBOUND_BYTES) {
    throw new NativeMessagingError('too-large', `outbound message of ${body.length} bytes`);
  }
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32LE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

export type NativeMessagingPortEvents = {
  message: [message: InboundMessage];
  /** A message we could not use. `fatal` ones end the port: no further message is read. */
  invalid: [error: NativeMessagingError, fatal: boolean];
  /** The browser closed our stdin: it dropped the port, we should exit. */
  end: [];
};

export interface NativeMessagingPortOptions {
  input: Readable;
  output: Writable;
  maxInboundBytes?: number;
}

/** The host's end of a native-messaging port, over the given streams (stdin/stdout in production). */
export class NativeMessagingPort extends Emitter<NativeMessagingPortEvents> {
  private readonly decoder: NativeMessageDecoder;
  private stopped = false;

  constructor(private readonly options: NativeMessagingPortOptions) {
    super();
    this.decoder = new NativeMessageDecoder(options.maxInboundBytes ?? MAX_INBOUND_BYTES);
    options.input.on('data', (chunk: Buffer) => this.receive(chunk));
    options.input.once('end', () => this.stop());
    options.input.once('close', () => this.stop());
    options.input.on('error', () => this.stop());
    // EPIPE here means the browser is gone: the same as our stdin closing, not a crash.
    options.output.on('error', () => this.stop());
  }

  send(message: OutboundMessage): void {
    if (this.options.output.destroyed || this.options.output.writableEnded) return;
    this.options.output.write(encodeNativeMessage(message));
  }

  /** Resolves once everything sent so far has been handed to the OS, so the process may exit. */
  flush(): Promise<void> {
    return new Promise((resolve) => {
      const output = this.options.output;
      if (output.writableLength === 0 || output.destroyed) resolve();
      else output.write('', () => resolve());
    });
  }

  private receive(chunk: Buffer): void {
    if (this.stopped) return;
    for (const decoded of this.decoder.push(chunk)) {
      if (decoded.ok) this.emit('message', decoded.message);
      else {
        this.emit('invalid', decoded.error, decoded.fatal);
        if (decoded.fatal) {
          this.stopped = true;
          this.options.input.pause();
          return;
        }
      }
    }
  }

  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.emit('end');
  }
}
