import { useEffect, useRef, useState } from 'preact/hooks';
import browser from 'webextension-polyfill';
import { formatBytes } from '../../components/format';
import type { DownloadsEngineState, TorrentProgress } from '../../features/downloads/downloads-messages';
import { t } from '../../lib/i18n';
import { engineEventSchema, offscreenReplySchema, type OffscreenCommand } from '../../lib/messages';
import type { PlaybackErrorCode } from '../../features/downloads/media-source-player';
import { fileNameOf, playerViewOf, readPlayerLink, type PlayerLink, type PlayerView } from './player-view';

/**
 * The player page: one audio or video file of a torrent in the user's downloads, played while it downloads.
 * In Chrome the media element reads `/media/<infohash>/<file>`, which the service worker answers with bytes
 * from the engines' host; in Firefox (no service worker for add-on pages) the page feeds the element a
 * MediaSource from the same host (firefox-playback.ts). Either way seeking asks for the pieces at the new
 * position first. The page follows the downloads (their
 * events, and a poll for a page opened while none come), and drops the media element with a sentence saying
 * why as soon as the torrent is removed or Downloads stop.
 */

const POLL_MS = 1_000;

type HostState = DownloadsEngineState | 'no-host' | undefined;

async function askHost(): Promise<DownloadsEngineState | 'no-host'> {
  const command: OffscreenCommand = { target: 'offscreen', type: 'status' };
  try {
    const reply = offscreenReplySchema.safeParse(await browser.runtime.sendMessage(command));
    return reply.success && reply.data.ok ? reply.data.status.downloads : 'no-host';
  } catch {
    return 'no-host';
  }
}

export function Player() {
  const [link] = useState(() => readPlayerLink(location.search));
  const [engine, setEngine] = useState<HostState>(undefined);
  const [mediaError, setMediaError] = useState<number>();
  const [playbackError, setPlaybackError] = useState<PlaybackErrorCode>();

  useEffect(() => {
    let live = true;
    const refresh = async () => {
      const state = await askHost();
      if (live) setEngine(state);
    };
    const onMessage = (message: unknown) => {
      const event = engineEventSchema.safeParse(message);
      if (event.success && event.data.type === 'downloads-state') setEngine(event.data.state);
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

  const view = playerViewOf(link, engine);
  const title = 'file' in view ? fileNameOf(view.file.path) : t('playerTitle');
  useEffect(() => {
    document.title = title;
  }, [title]);

  return (
    <main class="player" data-status={view.status}>
      <h1 data-testid="player-title">{title}</h1>
      {view.status === 'playable' ? (
        <>
          <Media view={view} link={link!} onError={setMediaError} onPlaybackError={setPlaybackError} />
          {mediaError !== undefined ? (
            <p class="problem" role="alert" data-testid="player-error" data-code={`media-${mediaError}`}>
              {mediaErrorWords(mediaError)}
            </p>
          ) : (
            playbackError !== undefined && (
              <p class="problem" role="alert" data-testid="player-error" data-code={playbackError}>
                {playbackErrorWords(playbackError, view.file.path)}
              </p>
            )
          )}
          <FileStatus view={view} />
        </>
      ) : (
        <ViewWords view={view} />
      )}
    </main>
  );
}

function Media(props: {
  view: Extract<PlayerView, { status: 'playable' }>;
  link: PlayerLink;
  onError: (code: number | undefined) => void;
  onPlaybackError: (code: PlaybackErrorCode) => void;
}) {
  const { view, link, onError, onPlaybackError } = props;
  const ref = useRef<HTMLVideoElement & HTMLAudioElement>(null);
  // Firefox: the element plays a MediaSource this page feeds, started once per file (the element is keyed by it).
  useEffect(() => {
    const media = ref.current;
    if (!import.meta.env.FIREFOX || !media) return;
    let live = true;
    let player: { stop(): void } | undefined;
    import('./firefox-playback')
      .then(async ({ playInFirefox }) => {
        const started = await playInFirefox(media, link, (error) => {
          if (live) onPlaybackError(error.code);
        });
        if (live) player = started;
        else started.stop();
      })
      .catch(() => {
        if (live) onPlaybackError('bad-file');
      });
    return () => {
      live = false;
      player?.stop();
    };
    // The element is keyed by `view.src`: one run per file.
  }, [view.src]);
  const common = {
    ref,
    ...(import.meta.env.FIREFOX ? {} : { src: view.src }),
    controls: true,
    autoplay: true,
    preload: 'auto' as const,
    'aria-label': fileNameOf(view.file.path),
    onError: (event: Event) => onError((event.currentTarget as HTMLMediaElement).error?.code ?? 0),
    onPlaying: () => onError(undefined),
  };
  // Keyed by the source: a new file gets a new element, state updates keep the one that plays.
  return view.kind === 'video' ? (
    <video key={view.src} data-testid="player-media" {...common} />
  ) : (
    <audio key={view.src} data-testid="player-media" {...common} />
  );
}

/** Why nothing plays: a status while it may still come (loading, metadata), an alert when it will not. */
function ViewWords(props: { view: Exclude<PlayerView, { status: 'playable' }> }) {
  const waiting = props.view.status === 'loading' || props.view.status === 'metadata';
  return (
    <p class={waiting ? '' : 'problem'} role={waiting ? 'status' : 'alert'} data-testid="player-message">
      {viewWords(props.view)}
    </p>
  );
}

function FileStatus(props: { view: Extract<PlayerView, { status: 'playable' }> }) {
  const { torrent, file } = props.view;
  const percent = file.length > 0 ? Math.floor((file.downloaded / file.length) * 100) : 100;
  return (
    <div class="file-status">
      <progress
        max={Math.max(1, file.length)}
        value={file.downloaded}
        aria-label={t('playerProgressLabel')}
        data-testid="player-progress"
        data-downloaded={file.downloaded}
        data-length={file.length}
      />
      <p aria-live="polite">
        {t('playerProgress', formatBytes(file.downloaded), formatBytes(file.length), String(percent))}
        {' · '}
        <span data-testid="player-state">{downloadWords(torrent, file.done)}</span>
      </p>
    </div>
  );
}

function downloadWords(torrent: TorrentProgress, fileDone: boolean): string {
  if (fileDone) return t('playerFileDone');
  switch (torrent.state.status) {
    case 'waiting':
      return t('playerWaitingForPath');
    case 'paused':
      return t('playerPaused');
    case 'failed':
      return t('playerDownloadFailed', torrent.state.reason);
    default:
      return t('playerDownloading');
  }
}

function viewWords(view: Exclude<PlayerView, { status: 'playable' }>): string {
  switch (view.status) {
    case 'bad-link':
      return t('playerBadLink');
    case 'loading':
      return t('playerLoading');
    case 'downloads-off':
      return t('playerDownloadsOff');
    case 'not-listed':
      return t('playerNotListed');
    case 'metadata':
      return t('playerMetadata');
    case 'failed':
      return t('playerDownloadFailed', view.reason);
    case 'no-file':
      return t('playerNoFile');
    case 'not-media':
      return t('playerNotMedia', fileNameOf(view.file.path));
  }
}

/** Why Firefox's MediaSource feed stopped (media-source-player.ts), in the same words as the rest of the page. */
function playbackErrorWords(code: PlaybackErrorCode, path: string): string {
  switch (code) {
    case 'gone':
    case 'no-torrent':
    case 'downloads-off':
    case 'cancelled':
      return t('playerErrorNetwork');
    case 'no-metadata':
      return t('playerMetadata');
    case 'no-file':
      return t('playerNoFile');
    case 'not-media':
      return t('playerNotMedia', fileNameOf(path));
    case 'unsupported-format':
      return t('playerErrorContainer', fileNameOf(path));
    case 'unsupported-codec':
      return t('playerErrorCodecs', fileNameOf(path));
    case 'bad-file':
      return t('playerErrorDamaged');
    case 'no-room':
      return t('playerErrorNoRoom');
    case 'forbidden':
    case 'bad-method':
    case 'range-not-satisfiable':
    case 'bad-answer':
      return t('playerErrorOther');
  }
}

/** MediaError codes: 1 aborted, 2 network, 3 decode, 4 source not supported. */
function mediaErrorWords(code: number): string {
  switch (code) {
    case 2:
      return t('playerErrorNetwork');
    case 3:
      return t('playerErrorDecode');
    case 4:
      return t('playerErrorFormat');
    default:
      return t('playerErrorOther');
  }
}
