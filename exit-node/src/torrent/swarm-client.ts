import WebTorrent from 'webtorrent';
import type { TorrentPolicy } from './torrent-policy.js';

export interface SwarmClientOptions {
  policy: TorrentPolicy;
  /** The fetch dispatcher for HTTP(S) trackers (policyHttpAgent); none: HTTP trackers are not used. */
  trackerAgent: object | undefined;
  bindAddress: string | undefined;
  listenPort: number;
  dht: boolean | { bootstrap: string[] };
  maxConns: number;
}

/**
 * Options of every bittorrent-tracker client the exit runs (WebTorrent's own, and HttpAnnouncer's for trackers
 * added later): HTTP(S) through the policy's dispatcher, no WebRTC (so WebSocket trackers introduce no peers).
 */
export function swarmTrackerOptions(trackerAgent: object | undefined): { wrtc: false; proxyOpts: object } {
  return {
    wrtc: false,
    // `socksProxy: {}` is a no-op that keeps bittorrent-tracker's UDP client from crashing on a proxyOpts
    // without it (it clones socksProxy through JSON).
    proxyOpts: trackerAgent
      ? { httpAgent: trackerAgent, httpsAgent: trackerAgent, socksProxy: {} }
      : { socksProxy: {} },
  };
}

/**
 * The exit's one WebTorrent client, with everything that would reach out on its own either off or under the
 * policy: the listener on the bind address, the DHT on a policy-vetted socket, HTTP trackers through the
 * policy's dispatcher, and no uTP, LSD, UPnP, NAT-PMP, web seeds or WebRTC.
 */
export function createSwarmClient(options: SwarmClientOptions): WebTorrent {
  const { policy, trackerAgent, bindAddress, dht } = options;
  const client = new WebTorrent({
    torrentPort: { port: options.listenPort, ...(bindAddress ? { host: bindAddress } : {}) },
    // uTP stays off: utp-native's listener binds 0.0.0.0 whatever WebTorrent asks and answers from the
    // primary address, so the swarm would see another address than the bind address.
    utp: false,
    lsd: false,
    natUpnp: false,
    natPmp: false,
    webSeeds: false,
    maxConns: options.maxConns,
    tracker: swarmTrackerOptions(trackerAgent),
    dht:
      dht === false
        ? false
        : { socket: policy.udpSocket('dht'), ...(dht === true ? {} : { bootstrap: dht.bootstrap }) },
  });
  // Backstop: WebTorrent checks this for every peer added by address (SwarmTorrent's addPeer gate comes first).
  client.blocked = { contains: (host) => !policy.allows('peer', host) };
  return client;
}
