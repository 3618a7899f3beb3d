import { z } from 'zod';

/**
 * When a new version of the add-on goes in (Firefox). Firefox unloads the running add-on before it starts the
 * new one, and in between it has no `proxy.onRequest` listener of ours: measured in ESR 153, pages' requests
 * went straight to the website for about 25–270 ms (an update installed over the add-on, `runtime.reload()`,
 * the add-on turned off and on). Nothing the add-on sets outlives that gap in a way that blocks pages (its
 * `proxy.settings` would need the private-browsing grant, and Firefox drops an add-on's settings when it turns
 * it off). What it can do is choose when an update goes in: with a `runtime.onUpdateAvailable` listener,
 * Firefox postpones every update of an installed add-on (from its update check or a file installed over it)
 * until the add-on calls `runtime.reload()` or the browser restarts, and a restart with Protect on is covered
 * (lib/proxy-control.ts: Firefox holds the first requests until the new background page answers them).
 *
 * So a version waits while the user has Protect on (on, rebuilding, or failed with pages held), and goes in at
 * once when Protect is off, or as soon as the user turns it off.
 */
export type UpdateGateOptions = {
  /** Whether the user has Protect on (what they asked for, stored; not the state of the moment). */
  protectWanted(): Promise<boolean>;
  /** Puts the waiting version in now (`runtime.reload()`, which installs a postponed update). */
  applyNow(): void;
  /** Tells pages which version waits (read by the e2e spec; the popup does not show it yet). */
  recordWaiting(version: string): Promise<void>;
};

/** What Firefox passes to `runtime.onUpdateAvailable`: a manifest version, checked before it is shown. */
const updateDetailsSchema = z.object({
  version: z
    .string()
    .max(64)
    .regex(/^[0-9A-Za-z.+-]+$/),
});

export class UpdateGate {
  private waiting = false;

  constructor(private readonly options: UpdateGateOptions) {}

  /** Firefox found a new version and holds it for us. */
  async updateAvailable(details: unknown): Promise<void> {
    this.waiting = true;
    const parsed = updateDetailsSchema.safeParse(details);
    // A version we cannot show still waits for the same moment; only the popup's words go without it.
    if (parsed.success) await this.options.recordWaiting(parsed.data.version);
    await this.applyIfProtectOff();
  }

  /** Protect went off: a waiting version goes in now. */
  async protectOff(): Promise<void> {
    await this.applyIfProtectOff();
  }

  private async applyIfProtectOff(): Promise<void> {
    if (!this.waiting || (await this.options.protectWanted())) return;
    this.waiting = false;
    this.options.applyNow();
  }
}
