import browser, { type Runtime } from 'webextension-polyfill';
import { defineBackground } from 'wxt/utils/define-background';
import { openDownloadsPage } from '../features/downloads/downloads-page-channel';
import { DownloadsSwitch } from '../features/downloads/downloads-switch';
import { TORRENT_LINK_PATTERNS } from '../features/downloads/torrent-link';
import { listenForMediaRequests } from '../features/downloads/media-worker';
import { ProtectSwitch } from '../features/protect/protect-switch';
import { VolunteerSwitch } from '../features/volunteer/volunteer-switch';
import { newClientsHeldByProtect } from '../features/volunteer/held-by-protect';
import { badgeFor, type BadgeInput } from '../lib/badge';
import { loadToolbarTheme, reportColorScheme, watchToolbarTheme } from '../lib/color-scheme';
import { toolbarStateFor } from '../lib/toolbar-icon';
import { TOOLBAR_ICON_RECORD_KEY, ToolbarIconPainter } from '../lib/toolbar-icon-painter';
import { t } from '../lib/i18n';
import { CompanionPort, type NativePortLike } from '../lib/companion-port';
import { uiRequestSchema, type UiReply } from '../lib/messages';
import { offscreenChannel } from '../lib/offscreen-channel';
import { chromeProxyControl, firefoxProxyControl } from '../lib/proxy-control';
import { SerialQueue } from '../lib/serial-queue';
import * as store from '../lib/store';
import { SwitchRunner } from '../lib/switch-runner';
import { UpdateGate } from '../lib/update-gate';

const WATCHDOG_ALARM = 'underpass-watchdog';
const DOWNLOAD_LINK_MENU = 'underpass-download-link';

export default defineBackground({
  // Firefox (MV2) keeps a persistent background page, which is where its WebRTC engines live.
  persistent: { firefox: true },
  main() {
    // Firefox: the proxy listener is in place before anything else runs, so that a browser starting again with
    // Protect on holds its first requests until Protect says where they go (lib/proxy-control.ts).
    const proxy = import.meta.env.FIREFOX ? firefoxProxyControl() : chromeProxyControl();
    // Listeners are registered synchronously: an MV3 worker woken by a message must find them in place.
    // The player's media requests (Chrome: Firefox's background page sees no fetches, and has no player yet).
    if (!import.meta.env.FIREFOX) listenForMediaRequests();
    const icon = toolbarIconPainter();
    // Listening first, so no change slips in while the stored theme is read (which then no longer applies).
    watchToolbarTheme((theme) => void icon.setTheme(theme));
    void loadToolbarTheme().then((theme) => icon.setInitialTheme(theme));
    // Firefox's background is a page and can see the colour scheme itself; Chrome's worker learns it from pages.
    if (import.meta.env.FIREFOX) reportColorScheme();
    const queue = new SerialQueue();
    // Firefox: a new version of the add-on waits while Protect is on (lib/update-gate.ts). The listener is
    // there from the start, so that Firefox postpones any update it finds; the decision waits in the queue
    // behind the user's commands.
    const updates = import.meta.env.FIREFOX ? firefoxUpdateGate() : undefined;
    if (updates)
      browser.runtime.onUpdateAvailable.addListener((details) => {
        void queue.run(() => updates.updateAvailable(details));
      });
    const ready = (async () => {
      const channel = import.meta.env.FIREFOX
        ? (await import('../lib/in-page-channel')).inPageChannel()
        : offscreenChannel();
      const protect = new ProtectSwitch({
        channel,
        proxy,
        createCompanion: () =>
          new CompanionPort({
            connect: (name) => browser.runtime.connectNative(name) as unknown as NativePortLike,
            lastError: () => (import.meta.env.FIREFOX ? undefined : chrome.runtime.lastError?.message),
            extensionId: browser.runtime.id,
          }),
        store,
        queue,
      });
      const volunteer = new VolunteerSwitch({ channel, store });
      // Firefox: while Protect's path is up our new links cannot connect, so the relay takes no new people.
      if (import.meta.env.FIREFOX)
        protect.on('change', (state) => {
          const take = !newClientsHeldByProtect(true, state);
          void queue.run(() => volunteer.takeNewClients(take));
        });
      // Protect off: a version that waited goes in now, if the user turned it off (a failure keeps it waiting).
      if (updates)
        protect.on('change', (state) => {
          if (state.status === 'off') void queue.run(() => updates.protectOff());
        });
      const downloads = new DownloadsSwitch({ channel, store });
      const switches = [protect, volunteer, downloads];
      const redrawToolbar = () => {
        showBadge({
          protect: protect.state,
          volunteer: volunteer.state,
          clientsNow: volunteer.clientsNow,
          downloadsActive: downloads.activeDownloads,
        });
        void icon.show(toolbarStateFor({ protect: protect.state, volunteer: volunteer.state }));
      };
      for (const feature of switches) feature.on('change', redrawToolbar);
      redrawToolbar();
      const runner = new SwitchRunner({ switches, channel, store, queue });
      await runner.resume();
      return runner;
    })();

    browser.runtime.onMessage.addListener(
      (message: unknown, sender: Runtime.MessageSender): Promise<UiReply> | undefined => {
        if (sender.id !== browser.runtime.id) return undefined;
        const parsed = uiRequestSchema.safeParse(message);
        if (!parsed.success) return undefined;
        const request = parsed.data;
        return ready.then((runner) =>
          request.type === 'set-switch'
            ? runner.setSwitch(request.name, request.on)
            : runner.act(request.name, request.action),
        );
      },
    );
    // Settings take effect at once: a running feature restarts with them by itself.
    store.watchSettings((settings) => void ready.then((runner) => runner.settingsChanged(settings)));

    // "Download with Underpass" on magnet and .torrent links: the browser's own menu finds the links, so no
    // script runs in anyone's pages. Menus outlive the worker; they are made again on install and update.
    browser.runtime.onInstalled.addListener(() => {
      void browser.contextMenus.removeAll().then(() =>
        browser.contextMenus.create({
          id: DOWNLOAD_LINK_MENU,
          title: t('contextMenuDownload'),
          contexts: ['link'],
          targetUrlPatterns: TORRENT_LINK_PATTERNS,
        }),
      );
    });
    browser.contextMenus.onClicked.addListener((info, tab) => {
      if (info.menuItemId !== DOWNLOAD_LINK_MENU || !info.linkUrl) return;
      // The page reads the link again (hostile until checked) and says in words what is wrong with it.
      void openDownloadsPage(
        info.linkUrl,
        tab?.index !== undefined ? { id: tab.id, index: tab.index } : undefined,
      );
    });

    void browser.alarms.create(WATCHDOG_ALARM, { periodInMinutes: 1 });
    browser.alarms.onAlarm.addListener((alarm) => {
      if (alarm.name === WATCHDOG_ALARM) void ready.then((runner) => runner.checkHost());
    });

    ready.catch((error: unknown) => console.error('underpass: background failed to start', error));
  },
});

/** Firefox's update gate: Protect's wish from storage; the waiting version in session storage, for pages. */
function firefoxUpdateGate(): UpdateGate {
  return new UpdateGate({
    protectWanted: async () => (await store.loadWanted()).protect,
    applyNow: () => browser.runtime.reload(),
    recordWaiting: (version) => store.saveWaitingUpdate(version),
  });
}

/** The toolbar icon, drawn from the same switch states as the badge, for the toolbar theme pages report. */
function toolbarIconPainter(): ToolbarIconPainter {
  const action = browser.action ?? browser.browserAction;
  return new ToolbarIconPainter({
    setIcon: (details) => action.setIcon(details),
    record: (record) => browser.storage.session.set({ [TOOLBAR_ICON_RECORD_KEY]: record }),
    onError: (error) => console.warn('underpass: toolbar icon not set', error),
  });
}

/**
 * The toolbar badge: Protect's state first; while Protect is off, how many people this browser relays for, else
 * how many downloads are under way.
 */
function showBadge(input: BadgeInput): void {
  const action = browser.action ?? browser.browserAction;
  const badge = badgeFor(input);
  void action.setBadgeText({ text: badge.text });
  void action.setBadgeBackgroundColor({ color: badge.color });
  void action.setTitle({ title: badge.title });
}
