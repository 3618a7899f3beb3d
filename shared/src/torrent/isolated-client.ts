/**
 * WebTorrent client options for a client that contacts no one by itself: no trackers, DHT, local discovery,
 * peer exchange, web seeds, uTP or port mapping. The user's side runs with these, so that the browser never
 * reaches the swarm and its one peer is the exit; tests use them for clients whose peers they add by hand.
 * A plain object, so shared/ needs no WebTorrent of its own: each host spreads it into the client it brings.
 */
export const ISOLATED_CLIENT_OPTIONS = {
  dht: false,
  tracker: false,
  lsd: false,
  utPex: false,
  webSeeds: false,
  utp: false,
  natUpnp: false,
  natPmp: false,
} as const;
