import type { SwitchState } from './messages';

/** What the toolbar badge is drawn from. */
export type BadgeInput = { protect: SwitchState; volunteer: SwitchState; clientsNow: number };

export type Badge = { text: string; color: string; title: string };

const PROTECT_BADGES = {
  connecting: { text: '…', color: '#b58900', title: 'Underpass: connecting' },
  on: { text: 'ON', color: '#2e7d32', title: 'Underpass: protected' },
  reconnecting: {
    text: '…',
    color: '#e65100',
    title: 'Underpass: reconnecting, traffic is blocked until the path is back',
  },
  error: { text: '!', color: '#c62828', title: 'Underpass: Protect failed' },
} as const;

/**
 * The toolbar badge. Protect comes first because it changes what the user's own traffic does; when it is
 * off, a volunteer sees how many people they are relaying for right now (Snowflake's badge, in spirit).
 */
export function badgeFor(input: BadgeInput): Badge {
  const { protect, volunteer, clientsNow } = input;
  if (protect.status !== 'off' && protect.status !== 'paused') return PROTECT_BADGES[protect.status];
  if (volunteer.status === 'on' && clientsNow > 0) {
    return {
      text: clientsNow > 99 ? '99+' : String(clientsNow),
      color: '#1565c0',
      title: `Underpass: relaying for ${clientsNow} ${clientsNow === 1 ? 'person' : 'people'}`,
    };
  }
  if (volunteer.status === 'paused')
    return { text: '', color: '#666666', title: 'Underpass: volunteering paused' };
  return { text: '', color: '#666666', title: 'Underpass' };
}
