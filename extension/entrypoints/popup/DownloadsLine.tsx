import { useEffect, useState } from 'preact/hooks';
import { formatBytes } from '../../components/format';
import type { DownloadsEngineState } from '../../features/downloads/downloads-messages';
import {
  openDownloadsPage,
  toDownloadsHost,
  watchDownloads,
} from '../../features/downloads/downloads-page-channel';
import { summarizeDownloads } from '../../features/downloads/downloads-summary';
import { t } from '../../lib/i18n';

/** While the popup is open, the host's downloads are asked for this often (its events come in between). */
const POLL_MS = 1_000;

/**
 * The popup's Downloads line: how many torrents are downloading, how far along and how fast (or how many are
 * listed, and failed), linking to the Downloads page. Nothing while the list is empty.
 */
export function DownloadsLine() {
  const [state, setState] = useState<DownloadsEngineState>({ status: 'off' });
  useEffect(() => {
    let live = true;
    const refresh = async () => {
      const next = await toDownloadsHost({ target: 'offscreen', type: 'status' });
      if (live) setState(next ?? { status: 'off' });
    };
    const unwatch = watchDownloads(setState);
    void refresh();
    const timer = setInterval(() => void refresh(), POLL_MS);
    return () => {
      live = false;
      clearInterval(timer);
      unwatch();
    };
  }, []);

  const summary = summarizeDownloads(state);
  if (summary.listed === 0) return null;
  const percent = summary.wanted > 0 ? Math.floor((summary.downloaded / summary.wanted) * 100) : 0;
  return (
    <p class="downloads-line" data-testid="downloads-line" data-active={summary.active} aria-live="polite">
      <a
        href="#"
        onClick={(event) => {
          event.preventDefault();
          void openDownloadsPage();
        }}
      >
        {t('downloadsLink')}
      </a>
      {': '}
      {summary.active > 0
        ? t('popupDownloadsActive', String(summary.active), String(percent), formatBytes(summary.speed))
        : t('popupDownloadsIdle', String(summary.listed))}
      {summary.failed > 0 && (
        <>
          {' · '}
          <span class="failure">{t('popupDownloadsFailed', String(summary.failed))}</span>
        </>
      )}
    </p>
  );
}
