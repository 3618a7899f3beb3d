import { useEffect, useState } from 'preact/hooks';
import { PairingSection } from '../../components/PairingSection';
import type { Pairing } from '../../lib/pairing-code';
import {
  checkSignalingUrl,
  DEFAULT_SIGNALING_URL,
  DEFAULT_SETTINGS,
  type Settings,
} from '../../lib/settings';
import { loadSettings, updateSettings } from '../../lib/store';

type Notice = { kind: 'saved' | 'invalid'; text: string } | undefined;

export function Options() {
  const [settings, setSettings] = useState<Settings>(DEFAULT_SETTINGS);
  const [urlInput, setUrlInput] = useState(DEFAULT_SETTINGS.signalingUrl);
  const [notice, setNotice] = useState<Notice>();
  const [loaded, setLoaded] = useState(false);

  useEffect(() => {
    void loadSettings().then((stored) => {
      setSettings(stored);
      setUrlInput(stored.signalingUrl);
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
    const next = await updateSettings((stored) => ({
      ...stored,
      signalingUrl: url.url,
      routeLoopback: settings.routeLoopback,
    }));
    setSettings(next);
    setUrlInput(url.url);
    setNotice({ kind: 'saved', text: 'Saved. Turn a switch off and on for it to take effect.' });
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
      <h1>Underpass settings</h1>
      <form onSubmit={(event) => void save(event)}>
        <label for="signaling-url">Signaling server</label>
        <input
          id="signaling-url"
          type="url"
          data-testid="signaling-url"
          value={urlInput}
          onInput={(event) => setUrlInput(event.currentTarget.value)}
          required
        />
        <p class="help">
          Introduces peers to each other; it never carries your traffic. Default for this build:{' '}
          {DEFAULT_SIGNALING_URL}
        </p>

        <fieldset class="testing">
          <legend>Testing only</legend>
          <label>
            <input
              type="checkbox"
              data-testid="route-loopback"
              checked={settings.routeLoopback}
              onChange={(event) => setSettings({ ...settings, routeLoopback: event.currentTarget.checked })}
            />{' '}
            Testing only: route loopback addresses (127.0.0.1, localhost) through the tunnel
          </label>
          <p class="help">
            Leave this off. It exists so tests can reach a website on this machine through an exit.
          </p>
        </fieldset>

        <button type="submit" data-testid="save-options">
          Save
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
