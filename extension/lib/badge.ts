import { t } from './i18n';
import type { SwitchState } from './messages';

/** What the toolbar badge is drawn from. */
export type BadgeInput = {
  protect: SwitchState;
  volunteer: SwitchState;
  clientsNow: number;
  /** Torrents still working (waiting for a path, getting metadata, downloading). */
  downloadsActive: number;
};

export type Badge = { text: string; color: string; title: string };

const PROTECT_BADGES = {
  connecting: { text: '…', color: '#b58900', title: () => t('badgeConnecting') },
  on: { text: 'ON', color: '#2e7d32', title: () => t('badgeProtected') },
  reconnecting: { text: '…', color: '#e65100', title: () => t('badgeReconnecting') },
  error: { text: '!', color: '#c62828', title: () => t('badgeProtectFailed') },
} as const;

const count = (n: number) => (n > 99 ? '99+' : String(n));

/**
 * The toolbar badge. Protect comes first because it changes what the user's own traffic does; when it is
 * off, a volunteer sees how many people they are relaying for right now (Snowflake's badge, in spirit); then
 * how many downloads are under way ("↓2"), so a download in a closed tab is not forgotten.
 */
export function badgeFor(input: BadgeInput): Badge {
  const { protect, volunteer, clientsNow, downloadsActive } = input;
  if (protect.status !== 'off' && protect.status !== 'paused') {
    const badge = PROTECT_BADGES[protect.status];
    return { text: badge.text, color: badge.color, title: badge.title() };
  }
  if (volunteer.status === 'on' && clientsNow > 0) {
    return {
      text: count(clientsNow),
      color: '#1565c0',
      title: clientsNow === 1 ? t('badgeRelayingOne') : t('badgeRelaying', String(clientsNow)),
    };
  }
  if (downloadsActive > 0) {
    return {
      text: `↓${count(downloadsActive)}`,
      color: '#6a1b9a',
      title: downloadsActive === 1 ? t('badgeDownloadsOne') : t('badgeDownloads', String(downloadsActive)),
    };
  }
  if (volunteer.status === 'paused') return { text: '', color: '#666666', title: t('badgeVolunteerPaused') };
  return { text: '', color: '#666666', title: t('badgeIdle') };
}
