import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import createTorrent from 'create-torrent';
import parseTorrent from 'parse-torrent';

export interface ContentFile {
  /** Inside the torrent (`name/...` on disk). */
  path: string;
  length: number;
  sha256: string;
}

/** Generated multi-file content, its `.torrent` and its hashes: what the local swarm seeds. */
export interface SwarmContent {
  /** The directory that holds `name/` (a client's download path for this torrent). */
  dir: string;
  name: string;
  files: ContentFile[];
  torrentFile: Uint8Array;
  infoHash: string;
  length: number;
}

export const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** A file to seed: random bytes of `length`, or the given `data` (e.g. a playable video). */
export type ContentSpec = { path: string; length: number } | { path: string; data: Uint8Array };

/** Files under `root/name/` (random or given), and a torrent of them (no trackers inside). */
export async function makeContent(
  root: string,
  name: string,
  files: ContentSpec[],
  pieceLength = 64 * 1024,
): Promise<SwarmContent> {
  const made: ContentFile[] = [];
  for (const file of files) {
    const data = 'data' in file ? file.data : randomBytes(file.length);
    const path = join(root, name, file.path);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, data);
    made.push({ path: file.path, length: data.length, sha256: sha256(data) });
  }
  const torrentFile = await new Promise<Uint8Array>((resolve, reject) =>
    createTorrent(
      join(root, name),
      { name, pieceLength, announceList: [], private: false },
      (error, torrent) => (error ? reject(error) : resolve(torrent)),
    ),
  );
  await writeFile(join(root, `${name}.torrent`), torrentFile);
  const { infoHash } = await parseTorrent(torrentFile);
  return {
    dir: root,
    name,
    files: made,
    torrentFile,
    infoHash,
    length: made.reduce((sum, f) => sum + f.length, 0),
  };
}

/** A magnet for the content with the given trackers (and nothing else). */
export function magnetOf(content: SwarmContent, trackers: string[]): string {
  return `magnet:?xt=urn:btih:${content.infoHash}${trackers.map((url) => `&tr=${encodeURIComponent(url)}`).join('')}`;
}
