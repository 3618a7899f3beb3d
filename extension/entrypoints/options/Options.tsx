import { useEffect, useState } from 'preact/hooks';
import { PairingSection } from '../../components/PairingSection';
import { t } from '../../lib/i18n';
import type { Pairing } from '@underpass/shared/data-port';
import {
  checkDirectoryKeys,
  checkSignalingUrl,
  DEFAULT_DIRECTORY_KEYS,
  DEFAULT_SIGNALING_URL,
  DEFAULT_SETTINGS,
  parseBypassSites,
  type Settings,
} from '../../lib/settings';
import { loadSettings, updateSettings } from '../../lib/store';
import { VolunteerPauseOptions } from './VolunteerPauseOptions';

type Notice = { kind: 'saved' | 'invalid'; text: string } | undefined;

/** Reads a whole-number field, clamped to what the settings schema accepts. */
function wholeNumber(input: string, min: number, max: number, fallback: number): number {
  const value = Number(input);
  if (!Number.isFinite(value)) return fallback;
  return Math.min(max, Math.max(min, Math.round(value)));
}

export function Options() {
  const [settings, setSettings] = useState<Settings>(DEFAULT_SETTINGS);
  const [urlInput, setUrlInput] = useState(DEFAULT_SETTINGS.signalingUrl);
  const [bypassInput, setBypassInput] = useState('');
  const [keysInput, setKeysInput] = useState(DEFAULT_SETTINGS.directoryKeys.join('\n'));
  const [notice, setNotice] = useState<Notice>();
  const [loaded, setLoaded] = useState(false);

  useEffect(() => {
    void loadSettings().then((stored) => {
      setSettings(stored);
      setUrlInput(stored.signalingUrl);
      setBypassInput(stored.bypassSites.join('\n'));
      setKeysInput(stored.directoryKeys.join('\n'));
      setLoaded(true);
    });
  }, []);

  const save = async (event: Event) => {
    event.preventDefault();
    const url = checkSignalingUrl(urlInput);
    if (!url.ok) {
      setNotice({ kind: 'invalid', text: url.reason });
      return;
    }
    const bypass = parseBypassSites(bypassInput);
    if (!bypass.ok) {
      setNotice({ kind: 'invalid', text: t('optionsBypassInvalid', bypass.entry) });
      return;
    }
    const keys = checkDirectoryKeys(keysInput);
    if (!keys.ok) {
      setNotice({ kind: 'invalid', text: t('optionsDirectoryKeysInvalid', keys.reason) });
      return;
    }
    const next = await updateSettings((stored) => ({
      ...stored,
      signalingUrl: url.url,
      directoryKeys: keys.keys,
      routeLoopback: settings.routeLoopback,
      mode: settings.mode,
      bypassSites: bypass.sites,
      volunteerCapacity: settings.volunteerCapacity,
      volunteerBandwidthKiBps: settings.volunteerBandwidthKiBps,
      volunteerMonthlyMiB: settings.volunteerMonthlyMiB,
      volunteerPauseOnBattery: settings.volunteerPauseOnBattery,
      volunteerPauseOnMetered: settings.volunteerPauseOnMetered,
    }));
    setSettings(next);
    setUrlInput(url.url);
    setBypassInput(next.bypassSites.join('\n'));
    setKeysInput(next.directoryKeys.join('\n'));
    setNotice({ kind: 'saved', text: t('optionsSaved') });
  };

  // Only the pairing changes here: an unsaved edit of the fields above stays unsaved.
  const pair = async (pairing: Pairing) => {
    const next = await updateSettings((stored) => ({ ...stored, pairing }));
    setSettings((current) => ({ ...current, pairing: next.pairing }));
  };
  const forget = async () => {
    await updateSettings(({ pairing: _forgotten, ...rest }) => rest);
    setSettings(({ pairing: _forgotten, ...rest }) => rest);
  };

  return (
    <main class="options" data-loaded={loaded}>
      <h1>{t('optionsTitle')}</h1>
      <form onSubmit={(event) => void save(event)}>
        <label for="signaling-url">{t('optionsSignaling')}</label>
        <input
          id="signaling-url"
          type="url"
          data-testid="signaling-url"
          value={urlInput}
          aria-describedby="signaling-help"
          onInput={(event) => setUrlInput(event.currentTarget.value)}
          required
        />
        <p class="help" id="signaling-help">
          {t('optionsSignalingHelp')} ({DEFAULT_SIGNALING_URL})
        </p>

        <fieldset>
          <legend>{t('optionsMode')}</legend>
          {(['two-hop', 'direct'] as const).map((mode) => (
            <div class="choice" key={mode}>
              <input
                type="radio"
                name="mode"
                id={`mode-${mode}`}
                value={mode}
                data-testid={`mode-${mode}`}
                checked={settings.mode === mode}
                aria-describedby={`mode-${mode}-help`}
                onChange={() => setSettings({ ...settings, mode })}
              />
              <label for={`mode-${mode}`}>
                {t(mode === 'two-hop' ? 'optionsModeTwoHop' : 'optionsModeDirect')}
              </label>
              <p class="help" id={`mode-${mode}-help`}>
                {t(mode === 'two-hop' ? 'optionsModeTwoHopHelp' : 'optionsModeDirectHelp')}
              </p>
            </div>
          ))}
        </fieldset>

        <label for="bypass-sites">{t('optionsBypass')}</label>
        <textarea
          id="bypass-sites"
          rows={4}
          spellcheck={false}
          data-testid="bypass-sites"
          aria-describedby="bypass-help"
          value={bypassInput}
          onInput={(event) => setBypassInput(event.currentTarget.value)}
        />
        <p class="help" id="bypass-help">
          {t('optionsBypassHelp')}
        </p>

        <label for="directory-keys">{t('optionsDirectoryKeys')}</label>
        <textarea
          id="directory-keys"
          rows={2}
          spellcheck={false}
          data-testid="directory-keys"
          aria-describedby="directory-keys-help"
          value={keysInput}
          onInput={(event) => setKeysInput(event.currentTarget.value)}
        />
        <p class="help" id="directory-keys-help">
          {t('optionsDirectoryKeysHelp', DEFAULT_DIRECTORY_KEYS.join(', '))}
        </p>

        <fieldset>
          <legend>{t('optionsVolunteer')}</legend>
          <label for="volunteer-capacity">{t('optionsCapacity')}</label>
          <input
            id="volunteer-capacity"
            type="number"
            min={1}
            max={64}
            data-testid="volunteer-capacity"
            value={settings.volunteerCapacity}
            onInput={(event) =>
              setSettings({
                ...settings,
                volunteerCapacity: wholeNumber(event.currentTarget.value, 1, 64, settings.volunteerCapacity),
              })
            }
          />
          <label for="volunteer-bandwidth">{t('optionsBandwidth')}</label>
          <input
            id="volunteer-bandwidth"
            type="number"
            min={0}
            data-testid="volunteer-bandwidth"
            value={settings.volunteerBandwidthKiBps}
            onInput={(event) =>
              setSettings({
                ...settings,
                volunteerBandwidthKiBps: wholeNumber(event.currentTarget.value, 0, 10_000_000, 0),
              })
            }
          />
          <label for="volunteer-monthly">{t('optionsMonthly')}</label>
          <input
            id="volunteer-monthly"
            type="number"
            min={0}
            data-testid="volunteer-monthly"
            aria-describedby="volunteer-help"
            value={settings.volunteerMonthlyMiB}
            onInput={(event) =>
              setSettings({
                ...settings,
                volunteerMonthlyMiB: wholeNumber(event.currentTarget.value, 0, 100_000_000, 0),
              })
            }
          />
          <p class="help" id="volunteer-help">
            {t('optionsVolunteerHelp')}
          </p>
          <VolunteerPauseOptions
            settings={settings}
            onChange={(change) => setSettings({ ...settings, ...change })}
          />
        </fieldset>

        <fieldset class="testing">
          <legend>{t('optionsTesting')}</legend>
          <label>
            <input
              type="checkbox"
              data-testid="route-loopback"
              checked={settings.routeLoopback}
              aria-describedby="loopback-help"
              onChange={(event) => setSettings({ ...settings, routeLoopback: event.currentTarget.checked })}
            />{' '}
            {t('optionsRouteLoopback')}
          </label>
          <p class="help" id="loopback-help">
            {t('optionsRouteLoopbackHelp')}
          </p>
        </fieldset>

        <button type="submit" data-testid="save-options">
          {t('optionsSave')}
        </button>
        {notice && (
          <p class={notice.kind} role="status" data-testid="options-notice">
            {notice.text}
          </p>
        )}
      </form>

      <PairingSection pairing={settings.pairing} onPair={pair} onForget={forget} />
    </main>
  );
}
