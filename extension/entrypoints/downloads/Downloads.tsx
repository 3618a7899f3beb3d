import { readMagnet } from '@underpass/shared/torrent';
import { useEffect, useState } from 'preact/hooks';
import browser from 'webextension-polyfill';
import { formatBytes } from '../../components/format';
import type {
  DownloadState,
  DownloadsEngineState,
  DownloadsPath,
  TorrentProgress,
} from '../../features/downloads/downloads-messages';
import { t } from '../../lib/i18n';
import {
  engineEventSchema,
  offscreenReplySchema,
  uiReplySchema,
  type OffscreenCommand,
  type UiRequest,
} from '../../lib/messages';
import type { SwitchError } from '../../lib/switch-error';

/**
 * The Downloads page: paste a magnet, watch each torrent, save finished files. The torrents live in the
 * engines' host; the page asks the background to keep that host up (the Downloads switch) and then talks to
 * the host directly. Its progress events arrive as they happen; a poll covers a page opened mid-download.
 */

const POLL_MS = 1_000;

type Command = Extract<OffscreenCommand, { type: `downloads-${string}` } | { type: 'status' }>;

/** Sends a command to the engines' host; undefined when there is no host (Downloads is off). */
async function toHost(command: Command): Promise<DownloadsEngineState | undefined> {
  try {
    const reply = offscreenReplySchema.safeParse(await browser.runtime.sendMessage(command));
    return reply.success && reply.data.ok ? reply.data.status.downloads : undefined;
  } catch {
    return undefined;
  }
}

async function setDownloadsSwitch(on: boolean): Promise<SwitchError | undefined> {
  const request: UiRequest = { target: 'background', type: 'set-switch', name: 'downloads', on };
  const reply = uiReplySchema.safeParse(await browser.runtime.sendMessage(request));
  if (!reply.success) return { code: 'internal', reason: 'The background sent a malformed reply.' };
  return reply.data.ok ? undefined : reply.data;
}

export function Downloads() {
  const [engine, setEngine] = useState<DownloadsEngineState>({ status: 'off' });
  const [magnetInput, setMagnetInput] = useState('');
  const [problem, setProblem] = useState<string>();

  useEffect(() => {
    let live = true;
    const refresh = async () => {
      const state = await toHost({ target: 'offscreen', type: 'status' });
      if (live) setEngine(state ?? { status: 'off' });
    };
    const onMessage = (message: unknown) => {
      const event = engineEventSchema.safeParse(message);
      if (!event.success) return;
      if (event.data.type === 'downloads-state') setEngine(event.data.state);
      if (event.data.type === 'downloads-file-ready')
        void browser.downloads.download({ url: event.data.url, filename: safeFileName(event.data.name) });
    };
    browser.runtime.onMessage.addListener(onMessage);
    void refresh();
    const timer = setInterval(() => void refresh(), POLL_MS);
    return () => {
      live = false;
      clearInterval(timer);
      browser.runtime.onMessage.removeListener(onMessage);
    };
  }, []);

  const add = async (event: Event) => {
    event.preventDefault();
    const magnet = readMagnet(magnetInput);
    if (!magnet.ok) return setProblem(magnet.reason);
    setProblem(undefined);
    const failure = await setDownloadsSwitch(true);
    if (failure) return setProblem(t('downloadsUnreachable', failure.reason));
    const state = await toHost({ target: 'offscreen', type: 'downloads-add', magnet: magnetInput.trim() });
    if (!state) return setProblem(t('downloadsUnreachable', 'the engines did not answer'));
    setEngine(state);
    setMagnetInput('');
  };

  const remove = async (infoHash: string) => {
    const state = await toHost({ target: 'offscreen', type: 'downloads-remove', infoHash });
    if (state) setEngine(state);
    // Nothing left: let the engines' host go (the background closes it when no switch runs).
    if (!state || (state.status === 'on' && state.torrents.length === 0)) await setDownloadsSwitch(false);
  };

  const save = (infoHash: string, fileIndex: number) =>
    void toHost({ target: 'offscreen', type: 'downloads-save', infoHash, fileIndex });

  const torrents = engine.status === 'on' ? engine.torrents : [];
  return (
    <main class="downloads">
      <h1>{t('downloadsTitle')}</h1>
      <p class="help">{t('downloadsIntro')}</p>
      <form onSubmit={(event) => void add(event)}>
        <label for="magnet" class="visually-hidden">
          {t('downloadsMagnetLabel')}
        </label>
        <input
          id="magnet"
          type="text"
          data-testid="magnet-input"
          placeholder="magnet:?xt=urn:btih:…"
          value={magnetInput}
          onInput={(event) => setMagnetInput(event.currentTarget.value)}
        />
        <button type="submit" data-testid="magnet-add">
          {t('downloadsAdd')}
        </button>
      </form>
      {problem && (
        <p class="invalid" role="alert" data-testid="downloads-problem">
          {problem}
        </p>
      )}
      {engine.status === 'on' && (
        <p data-testid="downloads-path" aria-live="polite">
          {pathWords(engine.path)}
        </p>
      )}
      {torrents.length === 0 ? (
        <p data-testid="downloads-empty">{t('downloadsEmpty')}</p>
      ) : (
        <ul>
          {torrents.map((torrent) => (
            <TorrentRow
              key={torrent.infoHash}
              torrent={torrent}
              onRemove={() => void remove(torrent.infoHash)}
              onSave={(index) => save(torrent.infoHash, index)}
            />
          ))}
        </ul>
      )}
    </main>
  );
}

function TorrentRow(props: {
  torrent: TorrentProgress;
  onRemove: () => void;
  onSave: (index: number) => void;
}) {
  const { torrent } = props;
  return (
    <li
      class="torrent"
      data-testid="torrent-row"
      data-infohash={torrent.infoHash}
      data-state={torrent.state.status}
    >
      <div class="torrent-head">
        <strong data-testid="torrent-name">{torrent.name}</strong>
        <button type="button" data-testid="torrent-remove" onClick={props.onRemove}>
          {t('downloadsRemove')}
        </button>
      </div>
      <progress
        max={Math.max(1, torrent.length)}
        value={Math.min(torrent.downloaded, torrent.length)}
        aria-label={torrent.name}
      />
      <p>
        <span class={torrent.state.status === 'failed' ? 'failed' : ''} data-testid="torrent-state">
          {stateWords(torrent.state)}
        </span>
        {torrent.length > 0 && (
          <>
            {' · '}
            {t('downloadsProgress', formatBytes(torrent.downloaded), formatBytes(torrent.length))}
          </>
        )}
        {torrent.state.status === 'downloading' && (
          <>
            {' · '}
            {t('downloadsSpeed', formatBytes(torrent.downloadSpeed))}
          </>
        )}
      </p>
      <ul class="files">
        {torrent.files.map((file) => (
          <li key={file.index} data-testid="torrent-file" data-path={file.path}>
            <span>{file.path}</span>
            <span>
              {t('downloadsProgress', formatBytes(file.downloaded), formatBytes(file.length))}{' '}
              {file.done && (
                <button type="button" data-testid="file-save" onClick={() => props.onSave(file.index)}>
                  {t('downloadsSave')}
                </button>
              )}
            </span>
          </li>
        ))}
      </ul>
    </li>
  );
}

function stateWords(state: DownloadState): string {
  switch (state.status) {
    case 'waiting':
      return state.reason ? `${t('downloadsWaiting')}: ${state.reason}` : t('downloadsWaiting');
    case 'metadata':
      return t('downloadsMetadata');
    case 'downloading':
      return t('downloadsDownloading');
    case 'paused':
      return t('downloadsPaused');
    case 'done':
      return t('downloadsDone');
    case 'failed':
      return t('downloadsFailed', failureWords(state));
  }
}

function failureWords(failure: SwitchError): string {
  switch (failure.code) {
    case 'metadata-timeout':
      return t('downloadsMetadataTimeout');
    case 'too-large':
      return t('downloadsTooLarge');
    case 'torrents-off':
      return t('downloadsTorrentsOff');
    default:
      return failure.reason;
  }
}

function pathWords(path: DownloadsPath): string {
  switch (path.status) {
    case 'connecting':
      return t('downloadsPathConnecting');
    case 'ready':
      return t('downloadsPathReady');
    case 'reconnecting':
      return t('downloadsPathReconnecting');
    case 'failed':
      return path.code === 'no-torrent-exit'
        ? t('downloadsNoTorrentExit')
        : t('downloadsPathFailed', path.reason);
  }
}

/** A torrent's file name as the browser's downloads take it: no folders, nothing that climbs out. */
function safeFileName(name: string): string {
  const cleaned = [...name]
    .map((char) => (char.charCodeAt(0) < 32 || '\\/:*?"<>|'.includes(char) ? '_' : char))
    .join('')
    .replace(/^\.+/, '_');
  return cleaned.length > 0 ? cleaned : 'download';
}
