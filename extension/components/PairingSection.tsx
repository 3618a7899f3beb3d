import { useState } from 'preact/hooks';
import { errorMessage } from '@underpass/shared/errors';
import type { Pairing } from '@underpass/shared/data-port';
import { decodePairingCode } from '../lib/pairing-code';

/**
 * The options page's way around native messaging: paste the code a hand-started companion printed. The
 * code is checked here, before it is stored, so a bad paste is answered at once and in words.
 */
export function PairingSection(props: {
  pairing: Pairing | undefined;
  onPair: (pairing: Pairing) => Promise<void>;
  onForget: () => Promise<void>;
}) {
  const { pairing, onPair, onForget } = props;
  const [code, setCode] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  const run = async (task: () => Promise<void>) => {
    setBusy(true);
    try {
      await task();
    } catch (failure) {
      setError(`Could not save: ${errorMessage(failure)}`);
    } finally {
      setBusy(false);
    }
  };

  const pair = (event: Event) => {
    event.preventDefault();
    const checked = decodePairingCode(code);
    if (!checked.ok) {
      setError(checked.reason);
      return;
    }
    void run(async () => {
      await onPair(checked.pairing);
      setError(undefined);
      setCode('');
    });
  };

  const forget = () =>
    void run(async () => {
      await onForget();
      setError(undefined);
    });

  return (
    <section class="pairing" aria-labelledby="pairing-title" data-testid="pairing-section">
      <h2 id="pairing-title">Companion started by hand</h2>
      <p class="help" id="pairing-help">
        Only for where native messaging cannot work (some browsers, headless runs): run{' '}
        <code>underpass-companion serve</code> and paste the pairing code it prints.
      </p>
      <p
        class={pairing ? 'paired' : 'unpaired'}
        role="status"
        data-testid="pairing-status"
        data-paired={pairing ? 'true' : 'false'}
      >
        {pairing
          ? `Paired with the companion on 127.0.0.1 (SOCKS port ${pairing.socksPort}, data port ${pairing.dataPort}). Protect uses it from the next time it is turned on.`
          : 'Not paired: Protect starts the companion through native messaging.'}
      </p>
      <form onSubmit={pair}>
        <label for="pairing-code">Pairing code</label>
        <input
          id="pairing-code"
          type="text"
          autocomplete="off"
          spellcheck={false}
          data-testid="pairing-code"
          value={code}
          aria-describedby={error ? 'pairing-help pairing-error' : 'pairing-help'}
          aria-invalid={error ? 'true' : 'false'}
          onInput={(event) => {
            setCode(event.currentTarget.value);
            setError(undefined);
          }}
        />
        <div class="buttons">
          <button type="submit" data-testid="pair" disabled={busy}>
            Pair
          </button>
          <button type="button" data-testid="forget-pairing" disabled={busy || !pairing} onClick={forget}>
            Forget
          </button>
        </div>
        {error && (
          <p class="invalid" id="pairing-error" role="alert" data-testid="pairing-error">
            {error}
          </p>
        )}
      </form>
    </section>
  );
}
