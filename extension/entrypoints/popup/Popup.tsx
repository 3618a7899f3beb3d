import { useEffect, useState } from 'preact/hooks';
import browser from 'webextension-polyfill';
import { formatBytes } from '../../components/format';
import { SwitchRow } from '../../components/SwitchRow';
import { uiReplySchema, ZERO_VOLUNTEER_STATS, type SwitchName, type UiRequest } from '../../lib/messages';
import { loadSnapshot, watchSnapshot, type StoreSnapshot } from '../../lib/store';

const INITIAL: StoreSnapshot = {
  protect: { status: 'off' },
  volunteer: { status: 'off' },
  volunteerStats: ZERO_VOLUNTEER_STATS,
};

export function Popup() {
  const [snapshot, setSnapshot] = useState<StoreSnapshot>(INITIAL);
  const [busy, setBusy] = useState<Record<SwitchName, boolean>>({ protect: false, volunteer: false });
  const [failure, setFailure] = useState<string | undefined>();

  useEffect(() => {
    void loadSnapshot().then(setSnapshot);
    return watchSnapshot(setSnapshot);
  }, []);

  const toggle = async (name: SwitchName, on: boolean) => {
    setBusy((b) => ({ ...b, [name]: true }));
    setFailure(undefined);
    try {
      const request: UiRequest = { target: 'background', type: 'set-switch', name, on };
      const reply = uiReplySchema.safeParse(await browser.runtime.sendMessage(request));
      if (!reply.success) setFailure('The background did not answer.');
      else if (!reply.data.ok) setFailure(reply.data.message);
    } catch (error) {
      setFailure(String(error));
    } finally {
      setBusy((b) => ({ ...b, [name]: false }));
    }
  };

  const stats = snapshot.volunteerStats;
  return (
    <main class="popup">
      <header class="title">
        <h1>Underpass</h1>
      </header>
      <SwitchRow
        name="protect"
        label="Protect"
        hint="Send this browser's traffic through volunteer peers."
        state={snapshot.protect}
        busy={busy.protect}
        onToggle={(on) => void toggle('protect', on)}
      />
      <SwitchRow
        name="volunteer"
        label="Volunteer"
        hint="Relay encrypted traffic for others. You cannot read it."
        state={snapshot.volunteer}
        busy={busy.volunteer}
        onToggle={(on) => void toggle('volunteer', on)}
      >
        <dl class="counters">
          <dt>Clients now</dt>
          <dd data-testid="volunteer-clients" data-value={stats.clientsNow}>
            {stats.clientsNow}
          </dd>
          <dt>Bytes relayed</dt>
          <dd
            data-testid="volunteer-bytes"
            data-value={stats.bytesFromClients + stats.bytesToClients}
            data-to-clients={stats.bytesToClients}
            data-from-clients={stats.bytesFromClients}
          >
            {formatBytes(stats.bytesToClients)} to clients, {formatBytes(stats.bytesFromClients)} from clients
          </dd>
        </dl>
      </SwitchRow>
      {failure && (
        <p class="failure" role="alert" data-testid="popup-failure">
          {failure}
        </p>
      )}
      <footer>
        <a
          href="#"
          data-testid="open-options"
          onClick={(event) => {
            event.preventDefault();
            void browser.runtime.openOptionsPage();
          }}
        >
          Settings
        </a>
      </footer>
    </main>
  );
}
