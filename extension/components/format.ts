import { t } from '../lib/i18n';

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'] as const;

/** 1536 → "1.5 KB": decimal places only where they carry information. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** Longer than this, an estimate says nothing: show none. */
export const MAX_ETA_SECONDS = 100 * 24 * 3600;

/**
 * Seconds until `remaining` bytes are in at `bytesPerSecond` (rounded up); undefined when there is nothing
 * left, no speed to go by, or the answer would be past MAX_ETA_SECONDS.
 */
export function etaSeconds(remaining: number, bytesPerSecond: number): number | undefined {
  if (!(remaining > 0) || !(bytesPerSecond > 0)) return undefined;
  const seconds = Math.ceil(remaining / bytesPerSecond);
  return seconds <= MAX_ETA_SECONDS ? seconds : undefined;
}

/** 42 → "42 s", 185 → "3 min 5 s", 7260 → "2 h 1 min", 90000 → "1 d 1 h": the two largest units. */
export function formatDuration(totalSeconds: number): string {
  const seconds = Math.max(0, Math.round(totalSeconds));
  const days = Math.floor(seconds / 86_400);
  const hours = Math.floor((seconds % 86_400) / 3_600);
  const minutes = Math.floor((seconds % 3_600) / 60);
  const rest = seconds % 60;
  if (days > 0) return t('durationDaysHours', String(days), String(hours));
  if (hours > 0) return t('durationHoursMinutes', String(hours), String(minutes));
  if (minutes > 0) return t('durationMinutesSeconds', String(minutes), String(rest));
  return t('durationSeconds', String(rest));
}
