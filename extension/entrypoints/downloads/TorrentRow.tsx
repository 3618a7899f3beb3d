import { useEffect, useState } from 'preact/hooks';
import { etaSeconds, formatBytes, formatDuration } from '../../components/format';
import type { FileProgress, TorrentProgress } from '../../features/downloads/downloads-messages';
import type { DownloadsCommand } from '../../features/downloads/downloads-page-channel';
import { wantedBytes } from '../../features/downloads/downloads-summary';
import { canChooseFiles, selectionCommandFiles, toggled } from '../../features/downloads/file-selection';
import { mediaKindOf } from '../../features/downloads/media';
import { t } from '../../lib/i18n';
import { stateWords } from './words';

/** How long the user's file choice is shown before the host's state has it. */
const PENDING_CHOICE_MS = 5_000;

/**
 * One torrent: name and state in words, a progress bar over the files the user wants, size, speed, time left,
 * the swarm's peers as the exit sees them, pause/resume and remove; then its files, each with a box to choose
 * it, its own progress, Play (video and audio, while downloading) and Save once verified.
 */
export function TorrentRow(props: {
  torrent: TorrentProgress;
  onCommand: (command: DownloadsCommand) => void;
  onRemove: () => void;
}) {
  const { torrent, onCommand } = props;
  const { infoHash, state } = torrent;
  const wanted = wantedBytes(torrent);
  const verified = Math.max(0, wanted - torrent.remaining);
  const percent = wanted > 0 ? Math.floor((verified / wanted) * 100) : 0;
  const eta =
    state.status === 'downloading' ? etaSeconds(torrent.remaining, torrent.downloadSpeed) : undefined;
  const paused = state.status === 'paused';
  const canPause =
    state.status === 'waiting' || state.status === 'metadata' || state.status === 'downloading';
  const choosable = canChooseFiles(torrent.files.length) && state.status !== 'failed';
  const hostSelected = torrent.files.filter((file) => file.selected).map((file) => file.index);
  // The user's last choice, shown until the host's state says the same (or for PENDING_CHOICE_MS at most, after
  // which the host's word stands): the boxes do not flicker back while the command is on its way.
  const [pending, setPending] = useState<ReadonlySet<number>>();
  const hostKey = hostSelected.join(',');
  useEffect(() => {
    if (pending && [...pending].sort((a, b) => a - b).join(',') === hostKey) setPending(undefined);
  }, [hostKey, pending]);
  useEffect(() => {
    if (!pending) return undefined;
    const timer = setTimeout(() => setPending(undefined), PENDING_CHOICE_MS);
    return () => clearTimeout(timer);
  }, [pending]);
  const selected = pending ?? new Set(hostSelected);
  const select = (index: number, on: boolean) => {
    const next = toggled(selected, index, on);
    const files = selectionCommandFiles(next, torrent.files.length);
    if (!files) return;
    setPending(next);
    onCommand({ target: 'offscreen', type: 'downloads-select', infoHash, files });
  };
  const nameId = `torrent-${infoHash}`;
  return (
    <li
      class="torrent"
      data-testid="torrent-row"
      data-infohash={infoHash}
      data-state={state.status}
      aria-labelledby={nameId}
    >
      <div class="torrent-head">
        <strong id={nameId} data-testid="torrent-name">
          {torrent.name}
        </strong>
        <span class="actions">
          {(canPause || paused) && (
            <button
              type="button"
              data-testid={paused ? 'torrent-resume' : 'torrent-pause'}
              aria-label={t(paused ? 'downloadsResumeLabel' : 'downloadsPauseLabel', torrent.name)}
              onClick={() =>
                onCommand({
                  target: 'offscreen',
                  type: paused ? 'downloads-resume' : 'downloads-pause',
                  infoHash,
                })
              }
            >
              {t(paused ? 'downloadsResume' : 'downloadsPause')}
            </button>
          )}
          <button
            type="button"
            data-testid="torrent-remove"
            aria-label={t('downloadsRemoveLabel', torrent.name)}
            onClick={props.onRemove}
          >
            {t('downloadsRemove')}
          </button>
        </span>
      </div>
      <progress
        max={Math.max(1, wanted)}
        value={Math.min(verified, wanted)}
        aria-label={t('downloadsProgressLabel', torrent.name)}
        aria-valuetext={t('downloadsPercent', String(percent))}
      />
      <p class="stats">
        <span class={state.status === 'failed' ? 'failed' : ''} data-testid="torrent-state">
          {stateWords(state)}
        </span>
        {wanted > 0 && (
          <span data-testid="torrent-size" data-value={wanted}>
            {t('downloadsProgress', formatBytes(verified), formatBytes(wanted))} (
            {t('downloadsPercent', String(percent))})
          </span>
        )}
        {state.status === 'downloading' && (
          <span data-testid="torrent-speed" data-value={torrent.downloadSpeed}>
            {t('downloadsSpeed', formatBytes(torrent.downloadSpeed))}
          </span>
        )}
        {eta !== undefined && (
          <span data-testid="torrent-eta" data-value={eta}>
            {t('downloadsEta', formatDuration(eta))}
          </span>
        )}
        {torrent.swarmPeers !== undefined && state.status !== 'done' && (
          <span data-testid="torrent-swarm-peers" data-value={torrent.swarmPeers}>
            {t('downloadsSwarmPeers', String(torrent.swarmPeers))}
          </span>
        )}
      </p>
      {torrent.files.length > 0 && (
        <ul class="files" aria-label={t('downloadsFilesLabel', torrent.name)}>
          {torrent.files.map((file) => (
            <FileRow
              key={file.index}
              infoHash={infoHash}
              file={file}
              choosable={choosable}
              chosen={selected.has(file.index)}
              onlyOneLeft={selected.has(file.index) && selected.size === 1}
              onSelect={(on) => select(file.index, on)}
              onSave={() =>
                onCommand({ target: 'offscreen', type: 'downloads-save', infoHash, fileIndex: file.index })
              }
            />
          ))}
        </ul>
      )}
      {torrent.files.length >= 2 && !choosable && state.status !== 'failed' && (
        <p class="help">{t('downloadsManyFiles', String(torrent.files.length))}</p>
      )}
    </li>
  );
}

function FileRow(props: {
  infoHash: string;
  file: FileProgress;
  choosable: boolean;
  /** Ticked: the host's selection, or the user's choice on its way to the host. */
  chosen: boolean;
  onlyOneLeft: boolean;
  onSelect: (on: boolean) => void;
  onSave: () => void;
}) {
  const { file } = props;
  const name = file.path.split('/').pop() || file.path;
  const media = mediaKindOf(file.path);
  const player = `/player.html?${new URLSearchParams({ infoHash: props.infoHash, file: String(file.index) }).toString()}`;
  return (
    <li
      class={`file${file.selected ? '' : ' skipped'}`}
      data-testid="torrent-file"
      data-path={file.path}
      data-selected={String(file.selected)}
      data-done={String(file.done)}
    >
      <label class="file-path">
        {props.choosable && (
          <input
            type="checkbox"
            data-testid="file-select"
            checked={props.chosen}
            disabled={props.onlyOneLeft}
            title={props.onlyOneLeft ? t('downloadsLastFile') : undefined}
            aria-label={t('downloadsFileSelectLabel', file.path)}
            onChange={(event) => props.onSelect(event.currentTarget.checked)}
          />
        )}
        <span>{file.path}</span>
      </label>
      <span class="file-progress">
        {file.selected || file.downloaded > 0 ? (
          <>
            <progress
              max={Math.max(1, file.length)}
              value={Math.min(file.downloaded, file.length)}
              aria-label={t('downloadsProgressLabel', name)}
            />{' '}
            {t('downloadsProgress', formatBytes(file.downloaded), formatBytes(file.length))}
          </>
        ) : (
          t('downloadsSkipped')
        )}
      </span>
      <span class="file-actions">
        {media && (file.selected || file.done) && (
          <a
            href={player}
            target="_blank"
            rel="noopener"
            data-testid="file-play"
            aria-label={t('downloadsPlayLabel', name)}
          >
            {t('downloadsPlay')}
          </a>
        )}
        {file.done && (
          <button
            type="button"
            data-testid="file-save"
            aria-label={t('downloadsSaveLabel', name)}
            onClick={props.onSave}
          >
            {t('downloadsSave')}
          </button>
        )}
      </span>
    </li>
  );
}
