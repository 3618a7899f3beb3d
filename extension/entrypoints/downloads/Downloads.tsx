import { useEffect, useRef, useState } from 'preact/hooks';
import browser from 'webextension-polyfill';
import { formatBytes } from '../../components/format';
import {
  MAX_DOWNLOADS,
  MAX_TORRENT_FILE_BYTES,
  type DownloadsEngineState,
  type TorrentProgress,
} from '../../features/downloads/downloads-messages';
import {
  setDownloadsSwitch,
  toDownloadsHost,
  watchDownloads,
  type DownloadsCommand,
} from '../../features/downloads/downloads-page-channel';
import { selectionCommandFiles } from '../../features/downloads/file-selection';
import { bytesToBase64, readTorrentFile, type TorrentFile } from '../../features/downloads/torrent-file';
import { fetchTorrentFile, linkFromFragment, readLink } from '../../features/downloads/torrent-link';
import { t } from '../../lib/i18n';
import { PreviewCard } from './PreviewCard';
import { TorrentRow } from './TorrentRow';
import { fetchProblemWords, pathWords, safeFileName, torrentFileProblemWords } from './words';

/**
 * The Downloads page: paste a magnet, pick or drop a .torrent (its files shown first, to choose from), or
 * arrive from a page's link ("Download with Underpass" opens this page with the link in its fragment); then one
 * row per torrent. The torrents live in the engines' host; the page asks the background to keep that host up
 * (the Downloads switch) and then talks to the host directly. Its progress events arrive as they happen; a
 * poll covers a page opened mid-download.
 */

const POLL_MS = 1_000;

/** A .torrent the user is choosing files of, before it is added. */
type Pending = { preview: TorrentFile; fileName: string; bytes: Uint8Array };

export function Downloads() {
  const [engine, setEngine] = useState<DownloadsEngineState>({ status: 'off' });
  const [magnetInput, setMagnetInput] = useState('');
  const [problems, setProblems] = useState<string[]>([]);
  const [notice, setNotice] = useState<string>();
  const [pending, setPending] = useState<Pending[]>([]);
  const [dragging, setDragging] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);
  // Handlers registered once (hashchange, drop) read the latest list through this.
  const engineRef = useRef(engine);
  engineRef.current = engine;

  const show = (state: DownloadsEngineState | undefined) => {
    if (state) setEngine(state);
  };
  const problem = (words: string) => setProblems((list) => [...list.slice(-4), words]);

  const listed = (infoHash: string) =>
    engineRef.current.status === 'on' &&
    engineRef.current.torrents.some((item) => item.infoHash === infoHash);
  const full = () => engineRef.current.status === 'on' && engineRef.current.torrents.length >= MAX_DOWNLOADS;

  /** Turns Downloads on and sends `command`; false (with the reason shown) when the host is not there. */
  const sendAdding = async (command: DownloadsCommand): Promise<boolean> => {
    const failure = await setDownloadsSwitch(true);
    if (failure) {
      problem(t('downloadsUnreachable', failure.reason));
      return false;
    }
    const state = await toDownloadsHost(command);
    if (!state) {
      problem(t('downloadsUnreachable', t('downloadsHostSilent')));
      return false;
    }
    show(state);
    return true;
  };

  const addMagnet = async (uri: string, infoHash: string, name: string): Promise<boolean> => {
    if (listed(infoHash)) {
      problem(t('downloadsAlreadyListed', name));
      return false;
    }
    if (full()) {
      problem(t('downloadsListFull', String(MAX_DOWNLOADS)));
      return false;
    }
    return sendAdding({ target: 'offscreen', type: 'downloads-add', magnet: uri });
  };

  /** A .torrent's bytes, from a file or a link: read, then shown with its files to choose from. */
  const offerTorrent = async (fileName: string, bytes: Uint8Array) => {
    const read = await readTorrentFile(bytes);
    if (!read.ok) return problem(torrentFileProblemWords(read.problem, fileName, read.reason));
    const { torrent: preview } = read;
    if (listed(preview.infoHash)) return problem(t('downloadsAlreadyListed', preview.name));
    setPending((list) =>
      list.some((item) => item.preview.infoHash === preview.infoHash)
        ? list
        : [...list, { preview, fileName, bytes }],
    );
  };

  const offerFile = async (file: File) => {
    if (file.size > MAX_TORRENT_FILE_BYTES)
      return problem(t('downloadsFileTooLarge', file.name, formatBytes(MAX_TORRENT_FILE_BYTES)));
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await file.arrayBuffer());
    } catch (error) {
      return problem(t('downloadsFileUnreadable', file.name, String(error)));
    }
    await offerTorrent(file.name, bytes);
  };

  /** A link from a page (the context menu), a drop or the magnet field. */
  const addLink = async (input: string) => {
    const read = readLink(input);
    if (!read.ok) return problem(t('downloadsBadLink', read.reason));
    const { link } = read;
    if (link.kind === 'magnet')
      return void (await addMagnet(link.uri, link.magnet.infoHash, link.magnet.name ?? link.magnet.infoHash));
    setNotice(t('downloadsFetching', link.url));
    const fetched = await fetchTorrentFile(link.url);
    setNotice(undefined);
    if (!fetched.ok) return problem(fetchProblemWords(fetched.problem, link.url, fetched.detail));
    await offerTorrent(fetched.name, fetched.bytes);
  };

  const startPending = async (item: Pending, selected: ReadonlySet<number>) => {
    const files = selectionCommandFiles(selected, item.preview.fileCount);
    if (!files) return problem(t('downloadsNothingSelected'));
    if (full()) return problem(t('downloadsListFull', String(MAX_DOWNLOADS)));
    setPending((list) => list.filter((other) => other !== item));
    await sendAdding({
      target: 'offscreen',
      type: 'downloads-add-torrent-file',
      name: item.fileName.slice(0, 1024),
      base64: bytesToBase64(item.bytes),
      files,
    });
  };

  useEffect(() => {
    let live = true;
    const refresh = async () => {
      const state = await toDownloadsHost({ target: 'offscreen', type: 'status' });
      if (live) setEngine(state ?? { status: 'off' });
    };
    const unwatch = watchDownloads(setEngine, (file) => {
      void browser.downloads.download({ url: file.url, filename: safeFileName(file.name) });
    });
    void refresh();
    const timer = setInterval(() => void refresh(), POLL_MS);

    // "Download with Underpass" on a page's link opens (or brings forward) this page as downloads.html#add=…
    const takeFragmentLink = () => {
      const link = linkFromFragment(location.hash);
      if (!link) return;
      history.replaceState(null, '', location.pathname + location.search);
      void addLink(link);
    };
    takeFragmentLink();
    addEventListener('hashchange', takeFragmentLink);

    // Drops anywhere on the page: .torrent files, or links (a magnet dragged from another tab).
    const accepts = (event: DragEvent) =>
      event.dataTransfer !== null &&
      (event.dataTransfer.types.includes('Files') || event.dataTransfer.types.includes('text/uri-list'));
    const onDragOver = (event: DragEvent) => {
      if (!accepts(event)) return;
      event.preventDefault();
      setDragging(true);
    };
    const onDragLeave = (event: DragEvent) => {
      if (event.relatedTarget === null) setDragging(false);
    };
    const onDrop = (event: DragEvent) => {
      if (!accepts(event)) return;
      event.preventDefault();
      setDragging(false);
      setProblems([]);
      const transfer = event.dataTransfer!;
      if (transfer.files.length > 0) {
        for (const file of transfer.files) void offerFile(file);
        return;
      }
      const links = transfer
        .getData('text/uri-list')
        .split(/\r?\n/)
        .filter((line) => line.length > 0 && !line.startsWith('#'));
      for (const link of links.slice(0, MAX_DOWNLOADS)) void addLink(link);
    };
    addEventListener('dragover', onDragOver);
    addEventListener('dragleave', onDragLeave);
    addEventListener('drop', onDrop);
    return () => {
      live = false;
      clearInterval(timer);
      unwatch();
      removeEventListener('hashchange', takeFragmentLink);
      removeEventListener('dragover', onDragOver);
      removeEventListener('dragleave', onDragLeave);
      removeEventListener('drop', onDrop);
    };
  }, []);

  const submitMagnet = async (event: Event) => {
    event.preventDefault();
    setProblems([]);
    const read = readLink(magnetInput);
    if (!read.ok) return problem(read.reason);
    const { link } = read;
    if (link.kind === 'torrent-url') {
      // A web link pasted here is taken as a .torrent link.
      setMagnetInput('');
      return addLink(link.url);
    }
    const { magnet, uri } = link;
    if (await addMagnet(uri, magnet.infoHash, magnet.name ?? magnet.infoHash)) setMagnetInput('');
  };

  const command = async (make: DownloadsCommand) => show(await toDownloadsHost(make));

  const remove = async (infoHash: string) => {
    const state = await toDownloadsHost({ target: 'offscreen', type: 'downloads-remove', infoHash });
    show(state);
    // Nothing left: let the engines' host go (the background closes it when no switch runs).
    if (!state || (state.status === 'on' && state.torrents.length === 0)) await setDownloadsSwitch(false);
  };

  const torrents = engine.status === 'on' ? engine.torrents : [];
  return (
    <main class={`downloads${dragging ? ' dragging' : ''}`}>
      <h1>{t('downloadsTitle')}</h1>
      <p class="help">{t('downloadsIntro')}</p>
      <form class="add" onSubmit={(event) => void submitMagnet(event)}>
        <label for="magnet" class="visually-hidden">
          {t('downloadsMagnetLabel')}
        </label>
        <input
          id="magnet"
          type="text"
          data-testid="magnet-input"
          placeholder="magnet:?xt=urn:btih:…"
          autocomplete="off"
          spellcheck={false}
          value={magnetInput}
          onInput={(event) => setMagnetInput(event.currentTarget.value)}
        />
        <button type="submit" data-testid="magnet-add">
          {t('downloadsAdd')}
        </button>
        <button type="button" data-testid="torrent-file-pick" onClick={() => fileInput.current?.click()}>
          {t('downloadsPickFile')}
        </button>
        <input
          ref={fileInput}
          type="file"
          accept=".torrent,application/x-bittorrent"
          multiple
          hidden
          data-testid="torrent-file-input"
          onChange={(event) => {
            setProblems([]);
            const input = event.currentTarget;
            for (const file of input.files ?? []) void offerFile(file);
            input.value = '';
          }}
        />
      </form>
      <p class="help">{t('downloadsDropHint')}</p>
      <div aria-live="polite">
        {notice && (
          <p class="notice" data-testid="downloads-notice">
            {notice}
          </p>
        )}
      </div>
      <div role="alert">
        {problems.map((words, index) => (
          <p key={index} class="invalid" data-testid="downloads-problem">
            {words}
          </p>
        ))}
      </div>
      {pending.map((item) => (
        <PreviewCard
          key={item.preview.infoHash}
          preview={item.preview}
          onStart={(selected) => void startPending(item, selected)}
          onCancel={() => setPending((list) => list.filter((other) => other !== item))}
        />
      ))}
      {engine.status === 'on' && (
        <p
          data-testid="downloads-path"
          data-shares-protect={String(engine.path.status === 'ready' && engine.path.sharesProtect === true)}
          aria-live="polite"
        >
          {pathWords(engine.path)}
        </p>
      )}
      {torrents.length === 0 ? (
        pending.length === 0 && <p data-testid="downloads-empty">{t('downloadsEmpty')}</p>
      ) : (
        <ul class="torrents">
          {torrents.map((torrent: TorrentProgress) => (
            <TorrentRow
              key={torrent.infoHash}
              torrent={torrent}
              onCommand={(make) => void command(make)}
              onRemove={() => void remove(torrent.infoHash)}
            />
          ))}
        </ul>
      )}
      {dragging && (
        <div class="drop-overlay" aria-hidden="true">
          {t('downloadsDropOverlay')}
        </div>
      )}
    </main>
  );
}
