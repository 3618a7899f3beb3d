import { Client as TrackerClient } from 'bittorrent-tracker';
import { errorMessage } from '@underpass/shared/errors';

export interface HttpAnnouncerOptions {
  /** http(s) tracker URLs, judged by the policy (the agent judges each connection again, after DNS). */
  trackers: readonly string[];
  infoHash: string;
  /** The client's peer id (40 hex) and listening port, as the swarm should know them. */
  peerId: string;
  port: number;
  /** The exit's tracker options (swarmTrackerOptions: the policy's fetch dispatcher, no WebRTC). */
  trackerOptions: object;
  /** What every announce says of the download. */
  announceState: () => { uploaded: number; downloaded: number; left: number };
  /** A peer the tracker named ("ip:port"): it goes to the same gate as every other source. */
  onPeer: (peer: string) => void;
  onWarning: (message: string) => void;
}

/**
 * Announces one torrent to HTTP(S) trackers that were not in its first user's list (a later user's): WebTorrent
 * fixes a torrent's trackers when the torrent is added, so these get a bittorrent-tracker client of their own,
 * with the same options as WebTorrent's (every request through the policy's dispatcher, from the exit's address).
 */
export class HttpAnnouncer {
  private readonly client: TrackerClient;

  constructor(options: HttpAnnouncerOptions) {
    this.client = new TrackerClient({
      ...options.trackerOptions,
      infoHash: options.infoHash,
      peerId: options.peerId,
      announce: [...options.trackers],
      port: options.port,
      getAnnounceOpts: options.announceState,
    });
    this.client.on('peer', (peer) => {
      if (typeof peer === 'string') options.onPeer(peer);
    });
    this.client.on('warning', (error) => options.onWarning(errorMessage(error)));
    this.client.on('error', (error) => options.onWarning(errorMessage(error)));
    this.client.start();
  }

  stop(): void {
    this.client.stop();
    this.client.destroy();
  }
}
