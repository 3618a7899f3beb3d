import decodeMagnet, { encode as encodeMagnet } from 'magnet-uri';
import { MAX_TORRENT_TRACKERS, validateTrackerUrl } from '../tunnel/mux-frames.js';

/**
 * A magnet link read for Underpass: what the exit needs (the infohash and the trackers, sent in the torrent
 * stream's OPEN) apart from what the user's own WebTorrent gets (the infohash and name only). The user's
 * browser must never contact a tracker, a peer or a source the magnet names: `xs`, `as`, `ws` and `x.pe` are
 * dropped here, and the trackers go only to the exit.
 */
export type MagnetLink = {
  /** The v1 infohash, 40 lowercase hex digits. */
  infoHash: string;
  name?: string;
  /** The magnet's trackers that a torrent request can carry (the first MAX_TORRENT_TRACKERS valid ones). */
  trackers: string[];
  /** Trackers left out: not http(s)/udp/ws(s), malformed, or past the limit. */
  droppedTrackers: number;
  /** What the user's own WebTorrent gets: `magnet:?xt=urn:btih:…` and the name, nothing it could contact. */
  userMagnet: string;
};

export type MagnetProblem = 'not-a-magnet' | 'no-infohash' | 'too-long';

export type MagnetCheck =
  { ok: true; magnet: MagnetLink } | { ok: false; problem: MagnetProblem; reason: string };

/** Longer than any magnet people paste (a few KiB with many trackers); past it, it is not one. */
export const MAX_MAGNET_LENGTH = 16 * 1024;

export function readMagnet(input: string): MagnetCheck {
  const uri = input.trim();
  if (uri.length > MAX_MAGNET_LENGTH)
    return { ok: false, problem: 'too-long', reason: 'This is too long to be a magnet link.' };
  if (!/^magnet:\?/i.test(uri))
    return { ok: false, problem: 'not-a-magnet', reason: 'A magnet link starts with "magnet:?".' };
  let decoded;
  try {
    decoded = decodeMagnet(uri);
  } catch {
    return { ok: false, problem: 'not-a-magnet', reason: 'This magnet link cannot be read.' };
  }
  const infoHash = decoded.infoHash;
  // magnet-uri takes any 40 characters after urn:btih: (hex or base32): only a real v1 infohash will do.
  if (typeof infoHash !== 'string' || !/^[0-9a-f]{40}$/.test(infoHash))
    return {
      ok: false,
      problem: 'no-infohash',
      reason: 'This magnet link names no BitTorrent v1 infohash (xt=urn:btih:…).',
    };
  const announced = Array.isArray(decoded.announce) ? decoded.announce : [];
  const valid = announced.filter((tracker) => validateTrackerUrl(tracker) === undefined);
  const trackers = valid.slice(0, MAX_TORRENT_TRACKERS);
  const name =
    typeof decoded.name === 'string' && decoded.name.length > 0 ? decoded.name.slice(0, 255) : undefined;
  return {
    ok: true,
    magnet: {
      infoHash,
      ...(name ? { name } : {}),
      trackers,
      droppedTrackers: announced.length - trackers.length,
      userMagnet: encodeMagnet({ infoHash, ...(name ? { name } : {}) }),
    },
  };
}
