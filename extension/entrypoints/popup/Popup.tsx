import { useEffect, useRef, useState } from 'preact/hooks';
import browser from 'webextension-polyfill';
import { formatBytes } from '../../components/format';
import { SwitchRow } from '../../components/SwitchRow';
import { openDownloadsPage } from '../../features/downloads/downloads-page-channel';
import { DownloadsLine } from './DownloadsLine';
import { NewPathButton } from './NewPathButton';
import { ProtectRefusals } from './ProtectRefusals';
import { VolunteerChart } from './VolunteerChart';
import { t } from '../../lib/i18n';
import { EMPTY_PROTECT_INFO, type ProtectInfo } from '../../features/protect/protect-messages';
import { ZERO_VOLUNTEER_STATS } from '../../features/volunteer/volunteer-messages';
import { newClientsHeldByProtect } from '../../features/volunteer/held-by-protect';
import { uiReplySchema, type SwitchName, type SwitchState, type UiRequest } from '../../lib/messages';
import { DEFAULT_SETTINGS } from '../../lib/settings';
import { loadSnapshot, watchSnapshot, type StoreSnapshot } from '../../lib/store';
import { browserClues, detectBrowser, installCommand } from '../../lib/install-hint';

const INITIAL: StoreSnapshot = {
  protect: { status: 'off' },
  volunteer: { status: 'off' },
  volunteerStats: ZERO_VOLUNTEER_STATS,
  protectInfo: EMPTY_PROTECT_INFO,
  usage: undefined,
  volunteerHistory: [],
  settings: DEFAULT_SETTINGS,
};

/** While the companion is missing, the popup tries again this often, so it notices the install by itself. */
const COMPANION_RECHECK_MS = 3_000;
const INSTALL_COMMAND = installCommand(
  detectBrowser(browserClues(import.meta.env.FIREFOX === true)),
  browser.runtime.id,
);

export function Popup() {
  const [snapshot, setSnapshot] = useState<StoreSnapshot>(INITIAL);
  const [busy, setBusy] = useState<Record<SwitchName, boolean>>({
    protect: false,
    volunteer: false,
    downloads: false,
  });
  const [failure, setFailure] = useState<string | undefined>();
  /** Set the moment the user turns Protect off, so a recheck already scheduled cannot turn it back on. */
  const protectOffByUser = useRef(false);

  useEffect(() => {
    void loadSnapshot().then(setSnapshot);
    return watchSnapshot(setSnapshot);
  }, []);

  const send = async (name: SwitchName, on: boolean): Promise<void> => {
    const request: UiRequest = { target: 'background', type: 'set-switch', name, on };
    const reply = uiReplySchema.safeParse(await browser.runtime.sendMessage(request));
    if (!reply.success) setFailure(t('backgroundSilent'));
    else if (!reply.data.ok) setFailure(reply.data.reason);
  };

  const toggle = async (name: SwitchName, on: boolean) => {
    if (name === 'protect') protectOffByUser.current = !on;
    setBusy((b) => ({ ...b, [name]: true }));
    setFailure(undefined);
    try {
      await send(name, on);
    } catch (error) {
      setFailure(String(error));
    } finally {
      setBusy((b) => ({ ...b, [name]: false }));
    }
  };

  const companionMissing =
    snapshot.protect.status === 'error' && snapshot.protect.code === 'companion-missing';
  useEffect(() => {
    if (!companionMissing) return undefined;
    const timer = setInterval(() => {
      if (!protectOffByUser.current) void send('protect', true).catch(() => undefined);
    }, COMPANION_RECHECK_MS);
    return () => clearInterval(timer);
  }, [companionMissing]);

  const stats = snapshot.volunteerStats;
  const capacity = stats.capacity || snapshot.settings.volunteerCapacity;
  const monthlyCapMiB = snapshot.settings.volunteerMonthlyMiB;
  const usedThisMonth = snapshot.usage?.bytes ?? 0;
  return (
    <main class="popup">
      <header class="title">
        <img src="/icons/underpass-32.png" alt="" width={24} height={24} />
        <h1>{t('extName')}</h1>
      </header>
      <SwitchRow
        name="protect"
        label={t('protectLabel')}
        hint={t('protectHint')}
        headline={companionMissing ? t('stateNoCompanion') : protectHeadline(snapshot.protect)}
        hideDetails={
          companionMissing || snapshot.protect.status === 'on' || snapshot.protect.status === 'reconnecting'
        }
        state={snapshot.protect}
        busy={busy.protect}
        onToggle={(on) => void toggle('protect', on)}
      >
        {companionMissing && (
          <div class="install" data-testid="companion-install">
            <p>
              {t('companionMissing', '')}
              <code>{INSTALL_COMMAND}</code>
            </p>
            <p class="help">{t('companionWatching')}</p>
            {snapshot.protect.status === 'error' && (
              <details>
                <summary>{t('moreDetails')}</summary>
                <p data-testid="companion-details">{snapshot.protect.reason}</p>
              </details>
            )}
          </div>
        )}
        {snapshot.protect.status === 'error' && snapshot.protect.blocking === true && (
          <p class="help" data-testid="protect-kill-switch">
            {t('protectBlockedUntilOff')}
          </p>
        )}
        {snapshot.protect.status === 'error' && snapshot.protect.code === 'untrusted-exit' && (
          <p class="help" data-testid="untrusted-exit">
            {t('untrustedExit')}
          </p>
        )}
        {snapshot.protect.status === 'on' && <PathDetails info={snapshot.protectInfo} />}
        {(snapshot.protect.status === 'on' || snapshot.protectInfo.renewing === true) && (
          <NewPathButton renewing={snapshot.protectInfo.renewing === true} onFailure={setFailure} />
        )}
        {snapshot.protect.status === 'reconnecting' &&
          snapshot.protect.detail &&
          !snapshot.protectInfo.renewing && (
            <p class="help" data-testid="protect-detail">
              {snapshot.protect.detail}
            </p>
          )}
        {(snapshot.protect.status === 'reconnecting' ||
          snapshot.protectInfo.stats.blockedWhileReconnecting > 0) &&
          snapshot.protect.status !== 'off' && (
            <p
              class="blocked"
              data-testid="protect-blocked"
              data-value={snapshot.protectInfo.stats.blockedWhileReconnecting}
            >
              {t('blockedCount', String(snapshot.protectInfo.stats.blockedWhileReconnecting))}
            </p>
          )}
        {snapshot.protect.status !== 'off' && (
          <ProtectRefusals refusals={snapshot.protectInfo.stats.refusals} />
        )}
      </SwitchRow>
      <SwitchRow
        name="volunteer"
        label={t('volunteerLabel')}
        hint={t('volunteerHint')}
        headline={volunteerHeadline(snapshot.volunteer)}
        hideDetails={snapshot.volunteer.status === 'on' || conditionPause(snapshot.volunteer) !== undefined}
        state={snapshot.volunteer}
        busy={busy.volunteer}
        onToggle={(on) => void toggle('volunteer', on)}
      >
        <dl class="counters">
          <dt>{t('volunteerClientsNow')}</dt>
          <dd data-testid="volunteer-clients" data-value={stats.clientsNow} data-capacity={capacity}>
            {t('ofCap', String(stats.clientsNow), String(capacity))}
          </dd>
          <dt>{t('volunteerHelped')}</dt>
          <dd data-testid="volunteer-helped" data-value={stats.helped24h}>
            {stats.helped24h}
          </dd>
          <dt>{t('volunteerRelayed')}</dt>
          <dd
            data-testid="volunteer-bytes"
            data-value={stats.bytesFromClients + stats.bytesToClients}
            data-to-clients={stats.bytesToClients}
            data-from-clients={stats.bytesFromClients}
          >
            {t('relayedDetail', formatBytes(stats.bytesToClients), formatBytes(stats.bytesFromClients))}
          </dd>
          <dt>{t('volunteerMonth')}</dt>
          <dd data-testid="volunteer-month" data-value={usedThisMonth}>
            {monthlyCapMiB > 0
              ? t('ofCap', formatBytes(usedThisMonth), formatBytes(monthlyCapMiB * 1024 * 1024))
              : formatBytes(usedThisMonth)}
          </dd>
        </dl>
        {snapshot.volunteer.status === 'on' && stats.clientsNow >= capacity && capacity > 0 && (
          <p class="help" data-testid="volunteer-full">
            {t('volunteerFull')}
          </p>
        )}
        {snapshot.volunteer.status === 'on' &&
          newClientsHeldByProtect(import.meta.env.FIREFOX === true, snapshot.protect) && (
            <p class="help" data-testid="volunteer-held-by-protect">
              {t('volunteerHeldByProtect')}
            </p>
          )}
        {conditionPause(snapshot.volunteer) && (
          <p class="help" data-testid="volunteer-paused-help">
            {t('volunteerPausedResumes')}
          </p>
        )}
        <VolunteerChart history={snapshot.volunteerHistory} now={Date.now()} />
      </SwitchRow>
      <DownloadsLine />
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
          {t('settingsLink')}
        </a>{' '}
        <a
          href="#"
          data-testid="open-downloads"
          onClick={(event) => {
            event.preventDefault();
            void openDownloadsPage();
          }}
        >
          {t('downloadsLink')}
        </a>
      </footer>
    </main>
  );
}

function PathDetails(props: { info: ProtectInfo }) {
  const { path, stats } = props.info;
  return (
    <section class="path" aria-label={t('pathTitle')} data-testid="protect-path">
      <dl class="counters">
        <dt>{t('pathRelay')}</dt>
        <dd data-testid="path-relay" data-value={path?.relayPeerId ?? ''}>
          {path?.relayPeerId ? shortId(path.relayPeerId) : t('pathDirect')}
        </dd>
        <dt>{t('pathExit')}</dt>
        <dd data-testid="path-exit" data-value={path?.exitPeerId ?? ''}>
          {path ? shortId(path.exitPeerId) : '—'}
        </dd>
        <dt>{t('pathRtt')}</dt>
        <dd data-testid="path-rtt" data-value={stats.rttMs ?? ''}>
          {stats.rttMs !== undefined ? t('rttValue', String(Math.round(stats.rttMs))) : '—'}
        </dd>
        <dt>{t('pathUp')}</dt>
        <dd data-testid="path-up" data-value={stats.bytesUp}>
          {formatBytes(stats.bytesUp)}
        </dd>
        <dt>{t('pathDown')}</dt>
        <dd data-testid="path-down" data-value={stats.bytesDown}>
          {formatBytes(stats.bytesDown)}
        </dd>
      </dl>
    </section>
  );
}

function protectHeadline(state: SwitchState): string {
  switch (state.status) {
    case 'off':
      return t('stateOff');
    case 'connecting':
      return t('stateConnecting');
    case 'on':
      return t('stateProtected');
    case 'reconnecting':
      return t('stateReconnecting');
    case 'paused':
      return t('statePaused');
    case 'error':
      return t('stateError');
  }
}

function volunteerHeadline(state: SwitchState): string {
  const pause = conditionPause(state);
  if (pause) return t(pause === 'on-battery' ? 'volunteerPausedBattery' : 'volunteerPausedMetered');
  switch (state.status) {
    case 'on':
      return t('stateVolunteering');
    case 'error':
      return t('stateVolunteerError');
    case 'reconnecting':
      return t('stateVolunteerReconnecting');
    default:
      return protectHeadline(state);
  }
}

/** Volunteer paused for the volunteer's own conditions (on battery, metered), not for the monthly cap. */
function conditionPause(state: SwitchState): 'on-battery' | 'metered' | undefined {
  if (state.status !== 'paused') return undefined;
  return state.code === 'on-battery' || state.code === 'metered' ? state.code : undefined;
}

function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 12)}…` : id;
}
