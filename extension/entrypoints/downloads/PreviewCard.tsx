import { useState } from 'preact/hooks';
import { formatBytes } from '../../components/format';
import { canChooseFiles, toggled } from '../../features/downloads/file-selection';
import type { TorrentFile } from '../../features/downloads/torrent-file';
import { t } from '../../lib/i18n';

/**
 * A .torrent read but not added yet: its name, size and files, every file ticked; the user unticks what they
 * do not want and starts it (as desktop clients' "add torrent" dialog does), or cancels.
 */
export function PreviewCard(props: {
  preview: TorrentFile;
  onStart: (selected: ReadonlySet<number>) => void;
  onCancel: () => void;
}) {
  const { preview } = props;
  const [selected, setSelected] = useState<ReadonlySet<number>>(
    () => new Set(Array.from({ length: preview.fileCount }, (_, index) => index)),
  );
  const choosable = canChooseFiles(preview.files.length, preview.fileCount);
  const selectedBytes = preview.files.reduce(
    (sum, file) => sum + (selected.has(file.index) ? file.length : 0),
    0,
  );
  const headingId = `preview-${preview.infoHash}`;
  return (
    <section
      class="preview"
      aria-labelledby={headingId}
      data-testid="torrent-preview"
      data-infohash={preview.infoHash}
    >
      <h2 id={headingId}>{preview.name}</h2>
      <p class="help">
        {t('downloadsPreviewSummary', String(preview.fileCount), formatBytes(preview.length))}
        {choosable && (
          <>
            {' · '}
            <span data-testid="preview-selected-size">
              {t('downloadsSelectedSize', formatBytes(selectedBytes))}
            </span>
          </>
        )}
      </p>
      {choosable ? (
        <fieldset class="files">
          <legend class="visually-hidden">{t('downloadsPreviewLabel', preview.name)}</legend>
          <label class="file all">
            <input
              type="checkbox"
              data-testid="preview-all"
              checked={selected.size === preview.fileCount}
              onChange={(event) =>
                setSelected(
                  event.currentTarget.checked ? new Set(preview.files.map((file) => file.index)) : new Set(),
                )
              }
            />
            <span>{t('downloadsSelectAll')}</span>
          </label>
          {preview.files.map((file) => (
            <label class="file" key={file.index} data-testid="preview-file" data-path={file.path}>
              <input
                type="checkbox"
                data-testid="preview-file-select"
                checked={selected.has(file.index)}
                onChange={(event) => setSelected(toggled(selected, file.index, event.currentTarget.checked))}
              />
              <span class="file-path">{file.path}</span>
              <span class="file-size">{formatBytes(file.length)}</span>
            </label>
          ))}
        </fieldset>
      ) : (
        preview.fileCount > preview.files.length && (
          <p class="help">{t('downloadsManyFiles', String(preview.files.length))}</p>
        )
      )}
      <div class="actions">
        <button
          type="button"
          data-testid="preview-start"
          disabled={selected.size === 0}
          onClick={() => props.onStart(selected)}
        >
          {t('downloadsAdd')}
        </button>
        <button
          type="button"
          data-testid="preview-cancel"
          aria-label={t('downloadsCancelLabel', preview.name)}
          onClick={props.onCancel}
        >
          {t('downloadsCancel')}
        </button>
      </div>
      {selected.size === 0 && (
        <p class="invalid" role="status">
          {t('downloadsNothingSelected')}
        </p>
      )}
    </section>
  );
}
