import type { Settings } from '../../lib/settings';

/** What a settings change means for a running Protect (ProtectSwitch.applySettings). */
export type ProtectSettingsChange = {
  /** The proxy rule changes: sites that bypass the tunnel, loopback, the signaling server (it bypasses). */
  proxy: boolean;
  /** The path must be built anew: another signaling server, mode or set of directory keys. */
  path: boolean;
  /** Another companion: paired, unpaired, or paired with another one. */
  companion: boolean;
};

export function settingsChangeFor(before: Settings, after: Settings): ProtectSettingsChange {
  return {
    proxy:
      before.routeLoopback !== after.routeLoopback ||
      before.signalingUrl !== after.signalingUrl ||
      !sameList(before.bypassSites, after.bypassSites),
    path:
      before.signalingUrl !== after.signalingUrl ||
      before.mode !== after.mode ||
      !sameList(before.directoryKeys, after.directoryKeys),
    companion: JSON.stringify(before.pairing ?? null) !== JSON.stringify(after.pairing ?? null),
  };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}
