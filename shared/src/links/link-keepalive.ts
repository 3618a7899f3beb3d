import type { Clock } from '../clock.js';

/**
 * The keepalive message of a WebRTC link (PROTOCOL.md §2): cell type 4 on the reserved circuit id 0, no payload.
 * It belongs to the link, not to any circuit: PeerLink consumes it, and engines never see it.
 */
export const LINK_KEEPALIVE_MESSAGE: Uint8Array = Uint8Array.of(4, 0, 0, 0, 0);

export function isLinkKeepalive(message: Uint8Array): boolean {
  return isLinkControlMessage(message, LINK_KEEPALIVE_MESSAGE[0]!);
}

/** A message of the link itself (§2): the given cell type on the reserved circuit id 0, no payload. */
export function isLinkControlMessage(message: Uint8Array, type: number): boolean {
  return (
    message.length === 5 &&
    message[0] === type &&
    message[1] === 0 &&
    message[2] === 0 &&
    message[3] === 0 &&
    message[4] === 0
  );
}

/**
 * A link with nothing to send says so this often, so that its far end keeps hearing from it: the far end hears
 * something at least every two periods (a keepalive goes out on each period in which nothing else did).
 */
export const DEFAULT_LINK_KEEPALIVE_MS = 500;
/**
 * A link that heard nothing for this long is taken for dead. A far end that vanished without a word (its network
 * gone, its browser frozen or killed, its host down) sends no close; WebRTC itself notices only after ~10 s
 * (Chromium's ICE `disconnected` came 7.5 s after the far browser froze). Six keepalive periods: a far end whose
 * timers run up to a second late (a hidden page's are aligned to whole seconds) is still heard in time.
 * Detection takes between this and one period more.
 */
export const DEFAULT_LINK_SILENCE_LIMIT_MS = 3_000;
/**
 * A lane of a striped link is taken for dead alone only after this long; the link judges silence over all its
 * lanes with DEFAULT_LINK_SILENCE_LIMIT_MS. Why longer: a lane whose SCTP lost a burst waits for its
 * retransmission timer (libwebrtc backs it off up to 3 s) with everything behind the loss, its keepalives
 * included, while the other lanes go on delivering; a per-lane 3 s ended whole links that way (once in a 50 MB
 * download beside a busy core). Still bounded: a lane that died alone holds the link's order until then.
 */
export const DEFAULT_LANE_SILENCE_LIMIT_MS = 10_000;

export interface LinkKeepaliveOptions {
  /** How often to look; 0 turns keepalives and the silence limit off. */
  intervalMs: number;
  /** Rounded up to whole intervals. */
  silenceLimitMs: number;
  clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
  /** Send one keepalive message. */
  send: () => void;
  /** Nothing was heard for the silence limit; called once, after which the keepalive stops. */
  silent: (heardNothingForMs: number) => void;
}

/**
 * Keeps a link's far end hearing from us, and notices when we stop hearing from it. It counts ticks, not
 * wall-clock time, so that a stall of our own event loop (a tick that runs late, before the messages that
 * arrived meanwhile are read) counts as one silent tick and never as the whole limit. Its owner tells it of
 * every message sent and heard: two flag writes, no clock read on the path of each message.
 */
export class LinkKeepalive {
  private timer: unknown;
  private sentSinceTick = false;
  private heardSinceTick = false;
  private silentTicks = 0;
  private readonly silentTicksLimit: number;

  constructor(private readonly options: LinkKeepaliveOptions) {
    this.silentTicksLimit = Math.max(1, Math.ceil(options.silenceLimitMs / options.intervalMs));
    if (options.intervalMs > 0) this.arm();
  }

  sent(): void {
    this.sentSinceTick = true;
  }

  heard(): void {
    this.heardSinceTick = true;
  }

  stop(): void {
    if (this.timer === undefined) return;
    this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    this.timer = this.options.clock.setTimeout(() => this.tick(), this.options.intervalMs);
  }

  private tick(): void {
    this.timer = undefined;
    this.silentTicks = this.heardSinceTick ? 0 : this.silentTicks + 1;
    this.heardSinceTick = false;
    if (this.silentTicks >= this.silentTicksLimit) {
      this.options.silent(this.silentTicks * this.options.intervalMs);
      return;
    }
    if (!this.sentSinceTick) this.options.send();
    this.sentSinceTick = false;
    this.arm();
  }
}
