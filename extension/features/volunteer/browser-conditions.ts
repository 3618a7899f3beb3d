import type { Conditions, ConditionSource } from './volunteer-pause-watch';

/**
 * The conditions as the browser tells them, where it does:
 * - **Battery**: the Battery Status API, `navigator.getBattery()`, exists in Chromium's documents (the offscreen
 *   document, the options page) but not in its service worker, nor anywhere in Firefox. "On battery" is
 *   `charging === false`. A machine with no battery reports charging.
 * - **Metered**: the Network Information API's `navigator.connection.type` (`cellular` is metered) exists on
 *   Android and ChromeOS; desktop Chromium (checked: 156 on Linux) exposes `connection` without `type`, and
 *   Firefox has no `connection`. The spec's `metered` attribute was dropped and no browser has it. `saveData`
 *   (the user asked for less data) also counts as metered, but only where `type` is told: alone it is too
 *   rarely set to make the option mean something.
 */

type EventTargetLike = {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
};

export type BatteryLike = EventTargetLike & { readonly charging: boolean };
export type ConnectionLike = EventTargetLike & { readonly type?: string; readonly saveData?: boolean };

/** The parts of `navigator` read here: any of them may be missing. */
export type NavigatorLike = {
  getBattery?: () => Promise<BatteryLike>;
  connection?: ConnectionLike;
};

/** Which conditions this browser tells, so an option it cannot honour is shown disabled with the reason. */
export type ConditionSupport = { battery: boolean; metered: boolean };

export function conditionSupport(nav: NavigatorLike): ConditionSupport {
  return {
    battery: typeof nav.getBattery === 'function',
    metered: typeof nav.connection?.type === 'string',
  };
}

/** A source reading `nav`; resolves once the battery (if any) is known. */
export async function browserConditionSource(nav: NavigatorLike): Promise<ConditionSource> {
  const support = conditionSupport(nav);
  let battery: BatteryLike | undefined;
  if (support.battery && nav.getBattery) {
    try {
      battery = await nav.getBattery.call(nav);
    } catch {
      // Refused (a permissions policy, say): then the browser does not tell.
      battery = undefined;
    }
  }
  const connection = support.metered ? nav.connection : undefined;
  return {
    current(): Conditions {
      return {
        onBattery: battery ? battery.charging === false : undefined,
        metered: connection ? connection.type === 'cellular' || connection.saveData === true : undefined,
      };
    },
    subscribe(listener) {
      battery?.addEventListener('chargingchange', listener);
      connection?.addEventListener('change', listener);
      return () => {
        battery?.removeEventListener('chargingchange', listener);
        connection?.removeEventListener('change', listener);
      };
    },
  };
}
