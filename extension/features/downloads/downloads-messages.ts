import { MAX_MAGNET_LENGTH, MAX_SELECTION_LENGTH } from '@underpass/shared/torrent';
import { z } from 'zod';
import { reasonSchema, switchErrorCodeSchema } from '../../lib/switch-error';
import { count, directoryKeysSchema, wsUrl } from '../../lib/wire-types';

/**
 * Downloads' messages: the background's start/stop, the Downloads page's commands (it talks to the engines'
 * host directly, as every extension page hears every message), and what the host reports of each torrent.
 */

/** More rows than anyone manages by hand; the host refuses to add past it. */
export const MAX_DOWNLOADS = 100;
/** Files listed per torrent (a torrent with more shows the first ones; all are still downloaded). */
export const MAX_LISTED_FILES = 1_000;

export const infoHashSchema = z.string().regex(/^[0-9a-f]{40}$/, 'expected a v1 infohash (40 hex digits)');
const nameSchema = z.string().max(1024);

/** Room for any real .torrent: 100 GB in 256 KiB pieces is 8 MB of piece hashes. */
export const MAX_TORRENT_FILE_BYTES = 8 * 1024 * 1024;
/** A .torrent file's bytes in base64 (runtime messages are JSON): 4 characters per 3 bytes. */
const torrentFileBase64 = z
  .string()
  .max(Math.ceil(MAX_TORRENT_FILE_BYTES / 3) * 4)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'expected base64');

/** A torrent's state in the words the page shows. */
export const downloadStateSchema = z.discriminatedUnion('status', [
  /** No wire to an exit that serves torrents yet (or it was lost): `reason` says why when known. */
  z.object({ status: z.literal('waiting'), reason: reasonSchema.optional() }),
  /** The exit's wire is attached; the torrent's metadata (names, sizes) is on its way. */
  z.object({ status: z.literal('metadata') }),
  z.object({ status: z.literal('downloading') }),
  /** The user paused it: no wire to the exit, pieces kept. */
  z.object({ status: z.literal('paused') }),
  z.object({ status: z.literal('done') }),
  /** The exit refused the torrent itself (metadata not found, too large, …): trying again would not help. */
  z.object({ status: z.literal('failed'), code: switchErrorCodeSchema, reason: reasonSchema }),
]);
export type DownloadState = z.infer<typeof downloadStateSchema>;

export const fileProgressSchema = z.object({
  index: count,
  /** The file's path inside the torrent, as WebTorrent gives it (the torrent's name first). */
  path: nameSchema,
  length: count,
  downloaded: count,
  done: z.boolean(),
  /** The user wants it (every file is selected until the user chooses). */
  selected: z.boolean(),
});
export type FileProgress = z.infer<typeof fileProgressSchema>;

export const torrentProgressSchema = z.object({
  infoHash: infoHashSchema,
  /** The magnet's name until the metadata names it. */
  name: nameSchema,
  /** 0 until the metadata is in. */
  length: count,
  downloaded: count,
  /** Bytes of the selected files not verified yet (0 before the metadata): the page's ETA is this ÷ speed. */
  remaining: count,
  /** Bytes per second, WebTorrent's running estimate. */
  downloadSpeed: count,
  /** Wires this torrent has: the exit's, or none (the user's client never has any other peer). */
  peers: count,
  /** Peers the exit's torrent service has in the swarm for this torrent, as the exit last said; absent until it says. */
  swarmPeers: count.optional(),
  state: downloadStateSchema,
  files: z.array(fileProgressSchema).max(MAX_LISTED_FILES),
});
export type TorrentProgress = z.infer<typeof torrentProgressSchema>;

/** The downloads path (its own ProtectEngine, to an exit that serves torrents). */
export const downloadsPathSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('connecting') }),
  z.object({
    status: z.literal('ready'),
    exitPeerId: z.string().max(128),
    /** Carried over Protect's path (Firefox while Protect is on: downloads-route.ts), not a path of their own. */
    sharesProtect: z.literal(true).optional(),
  }),
  z.object({ status: z.literal('reconnecting'), reason: reasonSchema }),
  /** Building it failed (e.g. no exit serves torrents); the host tries again after a pause. */
  z.object({ status: z.literal('failed'), code: switchErrorCodeSchema, reason: reasonSchema }),
]);
export type DownloadsPath = z.infer<typeof downloadsPathSchema>;

export const downloadsEngineStateSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('off') }),
  z.object({
    status: z.literal('on'),
    path: downloadsPathSchema,
    torrents: z.array(torrentProgressSchema).max(MAX_DOWNLOADS),
  }),
]);
export type DownloadsEngineState = z.infer<typeof downloadsEngineStateSchema>;

/** background (start, stop) and the Downloads page (the rest) → engines' host. */
export const DOWNLOADS_COMMANDS = [
  z.object({
    target: z.literal('offscreen'),
    type: z.literal('downloads-start'),
    signalingUrl: wsUrl,
    /** Only exits certified by one of these directory keys (settings.directoryKeys). */
    directoryKeys: directoryKeysSchema,
    mode: z.enum(['two-hop', 'direct']),
  }),
  z.object({ target: z.literal('offscreen'), type: z.literal('downloads-stop') }),
  z.object({
    target: z.literal('offscreen'),
    type: z.literal('downloads-add'),
    magnet: z.string().max(MAX_MAGNET_LENGTH),
  }),
  /** A .torrent file the user dropped or picked (or the background fetched from a link on a page). */
  z.object({
    target: z.literal('offscreen'),
    type: z.literal('downloads-add-torrent-file'),
    /** The file's own name, for messages only. */
    name: nameSchema,
    base64: torrentFileBase64,
    /**
     * The files the user chose before adding it (empty: every file). In the add itself, not a select behind
     * it: the host reads the file asynchronously, and a select arriving first would find no torrent to apply to.
     */
    files: z.array(count).max(MAX_SELECTION_LENGTH),
  }),
  z.object({ target: z.literal('offscreen'), type: z.literal('downloads-remove'), infoHash: infoHashSchema }),
  z.object({ target: z.literal('offscreen'), type: z.literal('downloads-pause'), infoHash: infoHashSchema }),
  z.object({ target: z.literal('offscreen'), type: z.literal('downloads-resume'), infoHash: infoHashSchema }),
  /** The files the user wants, by index; an empty list means every file. */
  z.object({
    target: z.literal('offscreen'),
    type: z.literal('downloads-select'),
    infoHash: infoHashSchema,
    files: z.array(count).max(MAX_SELECTION_LENGTH),
  }),
  /** Makes a finished file's blob URL; it comes back as `downloads-file-ready` for the page to save. */
  z.object({
    target: z.literal('offscreen'),
    type: z.literal('downloads-save'),
    infoHash: infoHashSchema,
    fileIndex: count,
  }),
] as const;

/**
 * The commands extension pages (the Downloads page, the popup's line, the player) send the engines' host
 * themselves; start and stop are the background's (the Downloads switch).
 */
export const DOWNLOADS_PAGE_COMMAND_TYPES = [
  'downloads-add',
  'downloads-add-torrent-file',
  'downloads-remove',
  'downloads-pause',
  'downloads-resume',
  'downloads-select',
  'downloads-save',
] as const;

/** The host's events extension pages listen to. */
export const DOWNLOADS_PAGE_EVENT_TYPES = ['downloads-state', 'downloads-file-ready'] as const;

/** engines' host → background and the Downloads page. */
export const DOWNLOADS_EVENTS = [
  z.object({
    target: z.literal('background'),
    type: z.literal('downloads-state'),
    state: downloadsEngineStateSchema,
  }),
  z.object({
    target: z.literal('background'),
    type: z.literal('downloads-file-ready'),
    infoHash: infoHashSchema,
    fileIndex: count,
    /** The file's own name, for the browser's downloads. */
    name: nameSchema,
    /** A blob: URL of the engines' host (same extension origin, so chrome.downloads can fetch it). */
    url: z.string().max(2048).startsWith('blob:'),
  }),
] as const;
