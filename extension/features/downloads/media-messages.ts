import { z } from 'zod';
import { count } from '../../lib/wire-types';
import { infoHashSchema } from './downloads-messages';
import { MEDIA_TYPES, type MediaType } from './media';
import { MAX_RANGE_HEADER } from './media-range';

/**
 * The media server's own channel between the service worker (which answers the player's media requests)
 * and the engines' host (which holds the torrents). The worker posts one `MediaRequest` per request to the
 * offscreen document with a MessagePort; everything after that goes over the port: the host's head (what
 * it will send, or why not), then one chunk per `pull` until `end`. Each side validates what the other
 * sends: a head names a type from the closed list and a range inside the file, chunks are bounded.
 */

/** Where the player points its <video>/<audio>: `/media/<infohash>/<file index>`. */
export const MEDIA_PATH_PREFIX = '/media/';
/** At most 7 digits of file index: more files than any torrent a browser could hold. */
const MEDIA_PATH = /^\/media\/([0-9a-f]{40})\/(0|[1-9]\d{0,6})$/;
const MAX_FILE_INDEX = 9_999_999;

export function mediaPath(infoHash: string, fileIndex: number): string {
  return `${MEDIA_PATH_PREFIX}${infoHash}/${fileIndex}`;
}

/** The infohash and file index of a media URL's path, or undefined when it is not one. */
export function readMediaPath(pathname: string): { infoHash: string; fileIndex: number } | undefined {
  const match = MEDIA_PATH.exec(pathname);
  if (!match?.[1] || !match[2]) return undefined;
  return { infoHash: match[1], fileIndex: Number(match[2]) };
}

/** Bytes in one chunk over the port: a piece is split into chunks of at most this much. */
export const MAX_MEDIA_CHUNK = 1024 * 1024;

export const MEDIA_REQUEST_TYPE = 'underpass-media-request';

export const mediaRequestSchema = z.object({
  type: z.literal(MEDIA_REQUEST_TYPE),
  infoHash: infoHashSchema,
  fileIndex: z.number().int().min(0).max(MAX_FILE_INDEX),
  method: z.enum(['GET', 'HEAD']),
  range: z.string().max(MAX_RANGE_HEADER).optional(),
});
export type MediaRequest = z.infer<typeof mediaRequestSchema>;

/** Why a media request got no bytes; each maps to one HTTP status. */
export const MEDIA_REFUSALS = {
  /** Not one of the extension's pages asking, or a navigation (the file would open as a page). */
  forbidden: 403,
  /** The torrent is not in the user's downloads (never added, or removed). */
  'no-torrent': 404,
  /** The torrent has no file of that index. */
  'no-file': 404,
  'bad-method': 405,
  /** The file is not audio or video by its name: it is never served. */
  'not-media': 415,
  'range-not-satisfiable': 416,
  /** The torrent's metadata (its file list) has not arrived yet. */
  'no-metadata': 503,
  /** Downloads are not running (no engines' host, or it did not answer in time). */
  'downloads-off': 503,
  /** The engines' host answered something malformed (the worker's own refusal; the host never sends it). */
  'bad-answer': 502,
} as const;
export type MediaRefusal = keyof typeof MEDIA_REFUSALS;

const refusalCodeSchema = z.enum(Object.keys(MEDIA_REFUSALS) as [MediaRefusal, ...MediaRefusal[]]);
const mediaTypeSchema = z.enum(MEDIA_TYPES as [MediaType, ...MediaType[]]);

/** The host's first answer on the port. */
export const mediaHeadSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('file'),
      contentType: mediaTypeSchema,
      size: count,
      /** The bytes that follow, both ends inclusive (`end` is start-1 for an empty file). */
      start: count,
      end: z.number().int().min(-1),
      partial: z.boolean(),
    })
    .refine((head) => head.end >= head.start - 1 && head.end < head.size, 'range outside the file')
    .refine(
      (head) => head.partial || (head.start === 0 && head.end === head.size - 1),
      'whole file expected',
    ),
  z.object({ type: z.literal('refused'), code: refusalCodeSchema, size: count.optional() }),
]);
export type MediaHead = z.infer<typeof mediaHeadSchema>;

/** The worker's words on the port after the head. */
export const mediaPullSchema = z.object({ type: z.enum(['pull', 'cancel']) });
export type MediaPull = z.infer<typeof mediaPullSchema>;

/** The host's answer to each pull. */
export const mediaChunkSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('chunk'),
    bytes: z
      .instanceof(Uint8Array)
      .refine((bytes) => bytes.length > 0 && bytes.length <= MAX_MEDIA_CHUNK, 'chunk size'),
  }),
  z.object({ type: z.literal('end') }),
  /** The file can no longer be read: the torrent was removed or Downloads stopped. */
  z.object({ type: z.literal('gone') }),
]);
export type MediaChunk = z.infer<typeof mediaChunkSchema>;
