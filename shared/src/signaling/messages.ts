/**
 * Signaling protocol v1: the JSON messages exchanged over the WebSocket between peers (clients, relays,
 * exits) and the signaling broker, one message per text frame. Both ends validate every inbound message
 * with these schemas; see shared/PROTOCOL.md for the prose version.
 */
import { z } from 'zod';
import { isExitKey } from './ids.js';

export const SIGNALING_PROTOCOL_VERSION = 1;
/** Largest message, in UTF-8 bytes, either end accepts. */
export const MAX_SIGNALING_MESSAGE_BYTES = 64 * 1024;
/** Largest `data` of a signal message, serialized, in UTF-8 bytes. */
export const MAX_SIGNAL_DATA_BYTES = 16 * 1024;
export const MAX_REQUEST_ID_LENGTH = 64;
export const MAX_POLICY_LENGTH = 512;
export const MAX_CAPACITY = 1000;
const MAX_ERROR_MESSAGE_LENGTH = 1024;
/** Link ids one `link-resume` may claim (see PROTOCOL.md §1, Reconnecting). */
export const MAX_RESUME_IDS_PER_MESSAGE = 256;
/** Link ids one connection may claim over its life: the server refuses more with `rate-limited`. */
export const MAX_RESUME_IDS_PER_CONNECTION = 4096;

export const SIGNALING_ERROR_CODES = [
  'malformed',
  'too-large',
  'unsupported-version',
  'not-allowed',
  'unknown-link',
  'no-relay-available',
  'no-exit-available',
  'unknown-exit',
  'rate-limited',
  'shutting-down',
  'timeout',
  'unavailable',
  /** An exit's registration was taken over: another connection proved the same exitKey afresh. Not retried. */
  'replaced',
] as const;
export type SignalingErrorCode = (typeof SIGNALING_ERROR_CODES)[number];

export const PEER_ROLES = ['client', 'relay', 'exit'] as const;
export type PeerRole = (typeof PEER_ROLES)[number];

/**
 * What a client's path may require of its exit beyond the ordinary `tcp` streams. `torrent`: the exit serves
 * torrent streams (it said `torrents: true` in its hello).
 */
export const EXIT_SERVICES = ['torrent'] as const;
export type ExitService = (typeof EXIT_SERVICES)[number];

// --- building blocks -------------------------------------------------------------------------------------

/** peerId and linkId: base64url of 16 random bytes is 22 characters; leave room for longer ids later. */
export const idSchema = z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, 'expected a base64url id');
export const exitKeySchema = z
  .string()
  .refine(isExitKey, 'expected a base64url (no padding) 32-byte X25519 public key');
export const requestIdSchema = z.string().min(1).max(MAX_REQUEST_ID_LENGTH);

const utf8 = new TextEncoder();
function jsonByteLength(value: unknown): number {
  try {
    const text = JSON.stringify(value);
    // Each UTF-16 unit is one to three UTF-8 bytes, so only texts near the limit need an exact count.
    if (text.length > MAX_SIGNAL_DATA_BYTES || text.length * 3 <= MAX_SIGNAL_DATA_BYTES) return text.length;
    return utf8.encode(text).length;
  } catch {
    return Infinity;
  }
}

/**
 * simple-peer's signal payload is opaque to the broker: any JSON object, bounded in size. It is checked,
 * not rebuilt, so it is forwarded exactly as received.
 */
export const signalDataSchema = z
  .custom<Record<string, unknown>>(
    (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
    'expected a JSON object',
  )
  .refine((v) => jsonByteLength(v) <= MAX_SIGNAL_DATA_BYTES, {
    message: `signal data larger than ${MAX_SIGNAL_DATA_BYTES} bytes`,
  });

/** 32 bytes in base64url without padding: keys, nonces and MACs of the exit-key proof. */
export const bytes32Schema = z.string().refine(isExitKey, 'expected base64url (no padding) of 32 bytes');

const peerRefSchema = z.object({ peerId: idSchema, role: z.enum(PEER_ROLES) });
/**
 * `torrents` is absent (false) from servers that predate it: a client that needs torrents checks it. `pings`
 * (the exit answers PING, PROTOCOL.md §4) is absent from servers and exits that predate it: the client then
 * asks with its first PING before it uses the path.
 */
const exitRefSchema = z.object({
  peerId: idSchema,
  exitKey: exitKeySchema,
  torrents: z.boolean().optional(),
  pings: z.boolean().optional(),
});

// --- peer → server ---------------------------------------------------------------------------------------

export const helloMessageSchema = z
  .object({
    type: z.literal('hello'),
    v: z.literal(SIGNALING_PROTOCOL_VERSION),
    role: z.enum(PEER_ROLES),
    capacity: z.int().min(1).max(MAX_CAPACITY).optional(),
    exitKey: exitKeySchema.optional(),
    policy: z.string().max(MAX_POLICY_LENGTH).optional(),
    /** (Exits) the exit serves torrent streams; absent means it does not. */
    torrents: z.boolean().optional(),
    /** (Exits) the exit answers PING; absent: not known to (an exit from before PING). */
    pings: z.boolean().optional(),
  })
  .superRefine((m, ctx) => {
    if (m.role === 'relay' && m.capacity === undefined)
      ctx.addIssue({ code: 'custom', path: ['capacity'], message: 'a relay must announce its capacity' });
    if (m.role === 'client' && m.capacity !== undefined)
      ctx.addIssue({ code: 'custom', path: ['capacity'], message: 'only relays and exits have a capacity' });
    if (m.role === 'exit' && m.exitKey === undefined)
      ctx.addIssue({ code: 'custom', path: ['exitKey'], message: 'an exit must announce its exitKey' });
    if (m.role !== 'exit' && m.exitKey !== undefined)
      ctx.addIssue({ code: 'custom', path: ['exitKey'], message: 'only exits have an exitKey' });
    if (m.role !== 'exit' && m.policy !== undefined)
      ctx.addIssue({ code: 'custom', path: ['policy'], message: 'only exits have a policy' });
    if (m.role !== 'exit' && m.torrents !== undefined)
      ctx.addIssue({ code: 'custom', path: ['torrents'], message: 'only exits serve torrents' });
    if (m.role !== 'exit' && m.pings !== undefined)
      ctx.addIssue({ code: 'custom', path: ['pings'], message: 'only exits answer PING' });
  });

export const pathRequestMessageSchema = z.object({
  type: z.literal('path-request'),
  requestId: requestIdSchema,
  mode: z.enum(['two-hop', 'direct']),
  exitKey: exitKeySchema.optional(),
  /** A service the exit must offer; absent: any exit. */
  needs: z.enum(EXIT_SERVICES).optional(),
});

export const connectExitMessageSchema = z.object({
  type: z.literal('connect-exit'),
  requestId: requestIdSchema,
  exitKey: exitKeySchema,
});

export const signalMessageSchema = z.object({
  type: z.literal('signal'),
  linkId: idSchema,
  data: signalDataSchema,
});

export const linkClosedMessageSchema = z.object({
  type: z.literal('link-closed'),
  linkId: idSchema,
});

export const loadMessageSchema = z.object({
  type: z.literal('load'),
  load: z.int().min(0),
});

/**
 * After a reconnect: the links this peer still holds, made through an earlier socket (perhaps by an earlier
 * server). The broker registers a link again once both its members claimed it from their new sockets.
 */
export const linkResumeMessageSchema = z.object({
  type: z.literal('link-resume'),
  linkIds: z.array(idSchema).min(1).max(MAX_RESUME_IDS_PER_MESSAGE),
});

/** (Exits) the answer to the server's `challenge`: see exit-proof.ts. */
export const proveMessageSchema = z.object({
  type: z.literal('prove'),
  proof: bytes32Schema,
});

/** Keeps an otherwise quiet connection from hitting the server's idle timeout. */
export const heartbeatMessageSchema = z.object({ type: z.literal('heartbeat') });

export const peerMessageSchema = z.discriminatedUnion('type', [
  helloMessageSchema,
  proveMessageSchema,
  heartbeatMessageSchema,
  pathRequestMessageSchema,
  connectExitMessageSchema,
  signalMessageSchema,
  linkClosedMessageSchema,
  loadMessageSchema,
  linkResumeMessageSchema,
]);

// --- server → peer ---------------------------------------------------------------------------------------

export const welcomeMessageSchema = z.object({
  type: z.literal('welcome'),
  v: z.literal(SIGNALING_PROTOCOL_VERSION),
  peerId: idSchema,
  /** Send something (a `heartbeat` will do) at least this often, or the server drops the connection. */
  heartbeatMs: z.int().min(1).optional(),
});

/** Sent to an exit instead of `welcome` after its hello; the exit must answer with `prove`. */
export const challengeMessageSchema = z.object({
  type: z.literal('challenge'),
  serverKey: bytes32Schema,
  nonce: bytes32Schema,
});

export const pathMessageSchema = z.object({
  type: z.literal('path'),
  requestId: requestIdSchema,
  linkId: idSchema,
  hop: z.object({ peerId: idSchema, role: z.enum(['relay', 'exit']) }),
  exit: exitRefSchema,
});

/**
 * Tells a peer to open a WebRTC link. `initiator:true` only in the reply to connect-exit (then `requestId`
 * is set); the hop of a client's path, and the exit of a relay's connect-exit, get `initiator:false`.
 */
export const linkMessageSchema = z.object({
  type: z.literal('link'),
  linkId: idSchema,
  requestId: requestIdSchema.optional(),
  initiator: z.boolean(),
  peer: peerRefSchema,
  exit: exitRefSchema.optional(),
});

export const errorMessageSchema = z.object({
  type: z.literal('error'),
  code: z.enum(SIGNALING_ERROR_CODES),
  message: z.string().max(MAX_ERROR_MESSAGE_LENGTH),
  requestId: requestIdSchema.optional(),
});

export const serverMessageSchema = z.discriminatedUnion('type', [
  welcomeMessageSchema,
  challengeMessageSchema,
  pathMessageSchema,
  linkMessageSchema,
  signalMessageSchema,
  linkClosedMessageSchema,
  errorMessageSchema,
]);

// --- types -----------------------------------------------------------------------------------------------

export type HelloMessage = z.infer<typeof helloMessageSchema>;
export type PathRequestMessage = z.infer<typeof pathRequestMessageSchema>;
export type ConnectExitMessage = z.infer<typeof connectExitMessageSchema>;
export type SignalMessage = z.infer<typeof signalMessageSchema>;
export type LinkClosedMessage = z.infer<typeof linkClosedMessageSchema>;
export type LoadMessage = z.infer<typeof loadMessageSchema>;
export type LinkResumeMessage = z.infer<typeof linkResumeMessageSchema>;
export type ProveMessage = z.infer<typeof proveMessageSchema>;
export type HeartbeatMessage = z.infer<typeof heartbeatMessageSchema>;
export type PeerMessage = z.infer<typeof peerMessageSchema>;

export type WelcomeMessage = z.infer<typeof welcomeMessageSchema>;
export type ChallengeMessage = z.infer<typeof challengeMessageSchema>;
export type PathMessage = z.infer<typeof pathMessageSchema>;
export type LinkMessage = z.infer<typeof linkMessageSchema>;
export type ErrorMessage = z.infer<typeof errorMessageSchema>;
export type ServerMessage = z.infer<typeof serverMessageSchema>;

// --- codec -----------------------------------------------------------------------------------------------

/** Codes a decoder can fail with; a broker answers each with an error frame of that code. */
export type DecodeErrorCode = Extract<SignalingErrorCode, 'malformed' | 'too-large' | 'unsupported-version'>;
export type DecodeResult<M> =
  { ok: true; msg: M } | { ok: false; code: DecodeErrorCode; message: string; requestId?: string };

/** UTF-8 length of `text` when it might be near `limit`; any value above `limit` means "too large". */
function exceedsBytes(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  return utf8.encode(text).length > limit;
}

function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid message';
  const where = issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : '';
  return `${where}${issue.message}`.slice(0, 200);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The requestId of a message that failed validation, when it has a usable one, so the error can cite it. */
function salvageRequestId(v: Record<string, unknown>): string | undefined {
  const id = v['requestId'];
  return typeof id === 'string' && requestIdSchema.safeParse(id).success ? id : undefined;
}

function decode<M>(text: string, schema: z.ZodType<M>, checkVersion: boolean): DecodeResult<M> {
  if (exceedsBytes(text, MAX_SIGNALING_MESSAGE_BYTES))
    return {
      ok: false,
      code: 'too-large',
      message: `message larger than ${MAX_SIGNALING_MESSAGE_BYTES} bytes`,
    };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'malformed', message: 'message is not valid JSON' };
  }
  if (!isRecord(value)) return { ok: false, code: 'malformed', message: 'message is not a JSON object' };
  // Checked before the schema, so a future version's hello (whatever its shape) gets a useful answer.
  if (checkVersion && value['type'] === 'hello' && value['v'] !== SIGNALING_PROTOCOL_VERSION)
    return {
      ok: false,
      code: 'unsupported-version',
      message: `this server speaks signaling protocol v${SIGNALING_PROTOCOL_VERSION} only; upgrade Underpass to a version that speaks it`,
    };
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const failure: DecodeResult<M> = { ok: false, code: 'malformed', message: describeIssue(parsed.error) };
    // Only now, on the error path: most messages carry no requestId at all.
    const requestId = salvageRequestId(value);
    if (requestId !== undefined) failure.requestId = requestId;
    return failure;
  }
  return { ok: true, msg: parsed.data };
}

/** Decodes one text frame from a peer (server side). Never throws. */
export function parsePeerMessage(text: string): DecodeResult<PeerMessage> {
  return decode(text, peerMessageSchema, true);
}

/** Decodes one text frame from the server (peer side). Never throws. */
export function parseServerMessage(text: string): DecodeResult<ServerMessage> {
  return decode(text, serverMessageSchema, false);
}

export function encodeMessage(msg: PeerMessage | ServerMessage): string {
  return JSON.stringify(msg);
}
