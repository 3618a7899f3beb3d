/**
 * A crash in @roamhq/wrtc (0.10.0, the latest): reading a connection's `localDescription` or `remoteDescription`
 * serializes the native description to SDP on the JavaScript thread, while libwebrtc's signaling thread may be
 * changing that very description — adding a candidate just gathered (local) or one given to `addIceCandidate`
 * (remote). There is no lock between the two: SIGSEGV in `webrtc::SdpSerialize`, called from
 * `node_webrtc::RTCPeerConnection::GetLocalDescription` (the core dump of a vitest worker that died in
 * exit-node/test/rogue-exit.test.ts: 1 run in 68 beside two busy loops, 0 in 100 with this).
 *
 * simple-peer reads both for every lane of every link: `localDescription` to signal its offer or answer right
 * after setting it (as gathering starts), `remoteDescription` for each candidate the far end trickles. So the
 * connection simple-peer gets answers both from what JavaScript last set, once the native side took it: the
 * native descriptions are never read. Nothing is lost: the SDP signalled is the offer or answer as created,
 * without the candidates gathered meanwhile, which are trickled anyway.
 */

/** An offer or answer as JavaScript sets it. */
export type Description = RTCSessionDescriptionInit;

/** The part of an RTCPeerConnection this wraps. */
export interface DescribedConnection {
  setLocalDescription(description?: Description): Promise<void>;
  setRemoteDescription(description: Description): Promise<void>;
}

/** What the getters answer: a description set, as a browser's would be (`sdp` always there), else null. */
const copy = (description: Description | undefined): Description | null =>
  description?.type ? { type: description.type, sdp: description.sdp ?? '' } : null;

/** `connection`, but with `localDescription` and `remoteDescription` answered without asking the native side. */
export function withCachedDescriptions<T extends DescribedConnection>(connection: T): T {
  let local: Description | null = null;
  let remote: Description | null = null;
  const replaced: Record<string | symbol, unknown> = {
    setLocalDescription: (description?: Description) =>
      connection.setLocalDescription(description).then(() => {
        local = copy(description);
      }),
    setRemoteDescription: (description: Description) =>
      connection.setRemoteDescription(description).then(() => {
        remote = copy(description);
      }),
  };
  return new Proxy(connection, {
    get(target, property) {
      if (property === 'localDescription') return local;
      if (property === 'remoteDescription') return remote;
      if (Object.hasOwn(replaced, property)) return replaced[property];
      const value: unknown = Reflect.get(target, property, target);
      // The native methods check their receiver: they must be called on the connection, not on the proxy.
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
    set(target, property, value) {
      return Reflect.set(target, property, value, target);
    },
  });
}
