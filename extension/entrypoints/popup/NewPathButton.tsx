import { useState } from 'preact/hooks';
import browser from 'webextension-polyfill';
import { t } from '../../lib/i18n';
import { uiReplySchema, type UiRequest } from '../../lib/messages';

/**
 * Protect's "New path": asks the background for a fresh path (the kill switch holds while it is built). While
 * one is being found, says so instead.
 */
export function NewPathButton(props: { renewing: boolean; onFailure: (reason: string) => void }) {
  const [asking, setAsking] = useState(false);
  if (props.renewing)
    return (
      <p class="help" role="status" data-testid="protect-renewing">
        {t('findingNewPath')}
      </p>
    );
  const ask = async () => {
    setAsking(true);
    try {
      const request: UiRequest = {
        target: 'background',
        type: 'switch-action',
        name: 'protect',
        action: 'new-path',
      };
      const reply = uiReplySchema.safeParse(await browser.runtime.sendMessage(request));
      if (!reply.success) props.onFailure(t('backgroundSilent'));
      else if (!reply.data.ok) props.onFailure(reply.data.reason);
    } catch (error) {
      props.onFailure(String(error));
    } finally {
      setAsking(false);
    }
  };
  return (
    <p class="new-path">
      <button
        type="button"
        data-testid="protect-new-path"
        aria-describedby="protect-new-path-hint"
        disabled={asking}
        onClick={() => void ask()}
      >
        {t('newPath')}
      </button>{' '}
      <span class="help" id="protect-new-path-hint">
        {t('newPathHint')}
      </span>
    </p>
  );
}
