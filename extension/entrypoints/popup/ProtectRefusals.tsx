import { Fragment } from 'preact';
import type { Refusals } from '../../features/protect/protect-messages';
import { REFUSAL_WORDS } from '../../features/protect/refusal-words';
import { t } from '../../lib/i18n';

/**
 * The requests Protect refused since it went on, in words: a line with the count and the latest one (its
 * reason and where it was going), and on demand the latest few and the counts by reason. Nothing while none.
 */
export function ProtectRefusals(props: { refusals: Refusals }) {
  const { total, byReason, recent } = props.refusals;
  const latest = recent[0];
  if (total === 0 || !latest) return null;
  const reason = t(REFUSAL_WORDS[latest.reason]);
  return (
    <div class="refusals" data-testid="protect-refusals" data-total={total} data-reason={latest.reason}>
      <p class="help" role="status" aria-live="polite" data-testid="protect-refusals-line">
        {total === 1
          ? t('refusedOne', reason, latest.destination)
          : t('refusedMany', String(total), reason, latest.destination)}
      </p>
      <details>
        <summary>{t('refusedList')}</summary>
        <ol data-testid="protect-refusals-list">
          {recent.map((refusal) => (
            <li key={`${refusal.at}-${refusal.destination}`} data-reason={refusal.reason}>
              {t(
                'refusedEntry',
                new Date(refusal.at).toLocaleTimeString(),
                refusal.destination,
                t(REFUSAL_WORDS[refusal.reason]),
              )}
            </li>
          ))}
        </ol>
        <p class="help">{t('refusedByReason')}</p>
        <dl class="counters">
          {Object.entries(byReason).map(([code, count]) => (
            <Fragment key={code}>
              <dt>{t(REFUSAL_WORDS[code as keyof typeof REFUSAL_WORDS])}</dt>
              <dd data-reason={code} data-value={count}>
                {count}
              </dd>
            </Fragment>
          ))}
        </dl>
        <p class="help">{t('refusedPrivacy')}</p>
      </details>
    </div>
  );
}
