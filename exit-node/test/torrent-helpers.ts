import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitPolicy } from '@underpass/shared/exit';
import type { ByteStream } from '@underpass/shared/streams';
import type { TorrentRequest } from '@underpass/shared/tunnel';
import { TorrentService, type TorrentServiceOptions } from '../src/torrent/index.js';
import { until } from './until.js';

/** The exit's own loopback address in torrent tests: its listener and every outgoing socket use it. */
export const EXIT_ADDRESS = '127.0.0.25';

/** A torrent service bound to EXIT_ADDRESS, allowed to reach only `allowDestinations`, no DHT by default. */
export async function startService(
  allowDestinations: string[],
  options: Partial<TorrentServiceOptions> = {},
): Promise<{ service: TorrentService; dataDir: string; stop(): Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'underpass-exit-torrents-'));
  const service = await TorrentService.start({
    policy: new ExitPolicy({ allowDestinations }),
    dataDir,
    bindAddress: EXIT_ADDRESS,
    listenPort: 0,
    dht: false,
    ...options,
  });
  return {
    service,
    dataDir,
    stop: async () => {
      await service.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The code a stream closed with (undefined for a clean close). */
export function closeCode(stream: ByteStream): Promise<string | undefined> {
  return new Promise((resolve) => {
    if (stream.closed) return resolve('closed-before-listening');
    stream.once('close', (error) => resolve(error?.code));
  });
}

/** Resolves once `condition` holds, polling; rejects after `ms`. */
export function waitFor(
  condition: () => boolean | Promise<boolean>,
  ms = 10_000,
  what = 'condition',
): Promise<void> {
  return until(what, condition, ms);
}

/** A torrent stream's request from its fields, as the stream router hands it to the service. */
export function torrentRequest(fields: Omit<TorrentRequest, 'kind'>): TorrentRequest {
  return { kind: 'torrent', ...fields };
}
