/**
 * What the protected user does all through the run: page loads in one tab and hash-checked downloads in
 * another, one after the other, each with a deadline. Every attempt is recorded with its times, its outcome
 * and, for a failure, a code (Chromium's net::ERR_… for a page, ours for a download). Bytes that arrive but
 * differ from what the website sent are counted as corrupted; a short or failed transfer is a failure, not
 * corruption.
 */
import { createHash } from 'node:crypto';
import type { BrowserContext, Page } from '@playwright/test';
import { deterministicBytes } from '../../test/http-site';

export type RequestKind = 'page' | 'download';

export type RequestRecord = {
  kind: RequestKind;
  startedAt: number;
  endedAt: number;
  ok: boolean;
  /** Why it failed (absent when ok). */
  code?: string;
  /** The failure's message, cut short, for a reader of the log. */
  detail?: string;
  /** Bytes delivered that differ from the website's at the same offset. */
  corruptedBytes: number;
};

export type LoadOptions = {
  context: BrowserContext;
  siteUrl: string;
  /** The exact body of the website's page, read directly before the run. */
  pageBody: Buffer;
  fileSize: number;
  /** sha256 of the website's file: checks that the page makes the same bytes (same seed) before any run. */
  fileSha256: string;
  /** Pause between two attempts of one loop, so that fast failures do not spin. */
  paceMs?: number;
  pageTimeoutMs?: number;
  downloadTimeoutMs?: number;
  now?: () => number;
};

const DEFAULT_PACE_MS = 250;
const DEFAULT_PAGE_TIMEOUT_MS = 15_000;
const DEFAULT_DOWNLOAD_TIMEOUT_MS = 30_000;

type DownloadOutcome = { ok: true } | { ok: false; code: string; corrupted: number; message?: string };

/** test/http-site.ts's default seed for its file's bytes. */
const FILE_SEED = 0x2545f491;

/** Bytes of `received` that differ from `expected` at the same offset (a shorter body is not counted here). */
export function differingBytes(received: Uint8Array, expected: Uint8Array): number {
  let count = 0;
  const length = Math.min(received.length, expected.length);
  for (let i = 0; i < length; i += 1) if (received[i] !== expected[i]) count += 1;
  return count;
}

/** Chromium's network error code out of a Playwright navigation error, else a coarse kind. */
export function navigationErrorCode(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const net = /net::(ERR_[A-Z_]+)/.exec(message);
  if (net) return net[1]!;
  if (error instanceof Error && error.name === 'TimeoutError') return 'timeout';
  return 'navigation-failed';
}

/** The first line of an error, without the URL (which differs on every request). */
function shortMessage(error: unknown): string {
  const line = (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
  return line.replace(/ at https?:\/\/\S+/, '').slice(0, 200);
}

export class UserLoad {
  readonly records: RequestRecord[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private pageTab: Page | undefined;
  private downloadTab: Page | undefined;
  private readonly now: () => number;
  private counter = 0;

  constructor(private readonly options: LoadOptions) {
    this.now = options.now ?? Date.now;
    const made = createHash('sha256').update(deterministicBytes(options.fileSize, FILE_SEED)).digest('hex');
    if (made !== options.fileSha256) throw new Error('the website does not serve the bytes the load expects');
  }

  /** Opens the two tabs (the download tab on the website, so its fetches are same-origin) and starts. */
  async start(): Promise<void> {
    this.pageTab = await this.options.context.newPage();
    this.downloadTab = await this.options.context.newPage();
    await this.downloadTab.goto(`${this.options.siteUrl}/`, { timeout: 60_000 });
    this.running = true;
    this.loops = [this.loop('page'), this.loop('download')];
  }

  /** Stops starting requests and waits for those in flight (e.g. while the user turns Protect off and on). */
  async pause(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  resume(): void {
    if (this.running) return;
    this.running = true;
    this.loops = [this.loop('page'), this.loop('download')];
  }

  async stop(): Promise<void> {
    await this.pause();
    await this.pageTab?.close().catch(() => undefined);
    await this.downloadTab?.close().catch(() => undefined);
  }

  /** Resolves with the end time of the first successful request started at or after `since`. */
  firstSuccessSince(since: number): number | undefined {
    const hit = this.records.find((r) => r.ok && r.startedAt >= since);
    return hit?.endedAt;
  }

  private async loop(kind: RequestKind): Promise<void> {
    while (this.running) {
      const startedAt = this.now();
      const outcome = kind === 'page' ? await this.loadPage() : await this.download();
      this.records.push({ kind, startedAt, endedAt: this.now(), ...outcome });
      await new Promise((resolve) => setTimeout(resolve, this.options.paceMs ?? DEFAULT_PACE_MS));
    }
  }

  private async loadPage(): Promise<Omit<RequestRecord, 'kind' | 'startedAt' | 'endedAt'>> {
    const tab = this.pageTab!;
    this.counter += 1;
    try {
      const response = await tab.goto(`${this.options.siteUrl}/?chaos=${this.counter}`, {
        timeout: this.options.pageTimeoutMs ?? DEFAULT_PAGE_TIMEOUT_MS,
        waitUntil: 'load',
      });
      if (!response) return { ok: false, code: 'no-response', corruptedBytes: 0 };
      if (response.status() !== 200)
        return { ok: false, code: `http-${response.status()}`, corruptedBytes: 0 };
      const body = await response.body();
      const corruptedBytes = differingBytes(body, this.options.pageBody);
      if (corruptedBytes > 0) return { ok: false, code: 'corrupted', corruptedBytes };
      if (body.length !== this.options.pageBody.length)
        return { ok: false, code: 'truncated', corruptedBytes: 0 };
      return { ok: true, corruptedBytes: 0 };
    } catch (error) {
      return { ok: false, code: navigationErrorCode(error), detail: shortMessage(error), corruptedBytes: 0 };
    }
  }

  private async download(): Promise<Omit<RequestRecord, 'kind' | 'startedAt' | 'endedAt'>> {
    const tab = this.downloadTab!;
    this.counter += 1;
    const timeoutMs = this.options.downloadTimeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS;
    let outcome: DownloadOutcome;
    try {
      outcome = await tab.evaluate(
        async ({ url, size, seed, timeoutMs: deadline }) => {
          // The website's bytes, made here the way test/http-site.ts makes them (xorshift32, little-endian
          // words). The page is plain http on a non-loopback address, not a secure context, so there is no
          // crypto.subtle to hash with: every byte is compared instead, which also counts the ones that differ.
          const expected = new Uint8Array(Math.ceil(size / 4) * 4);
          const words = new DataView(expected.buffer);
          let x = seed >>> 0;
          for (let i = 0; i < expected.length; i += 4) {
            x ^= x << 13;
            x >>>= 0;
            x ^= x >>> 17;
            x ^= x << 5;
            x >>>= 0;
            words.setUint32(i, x, true);
          }
          const abort = new AbortController();
          const timer = setTimeout(() => abort.abort(), deadline);
          try {
            const response = await fetch(url, { cache: 'no-store', signal: abort.signal });
            if (response.status !== 200)
              return { ok: false as const, code: `http-${response.status}`, corrupted: 0 };
            const bytes = new Uint8Array(await response.arrayBuffer());
            let corrupted = 0;
            const length = Math.min(bytes.length, size);
            for (let i = 0; i < length; i += 1) if (bytes[i] !== expected[i]) corrupted += 1;
            if (corrupted > 0) return { ok: false as const, code: 'corrupted', corrupted };
            if (bytes.length !== size) return { ok: false as const, code: 'truncated', corrupted: 0 };
            return { ok: true as const };
          } catch (error) {
            const name = error instanceof Error ? error.name : '';
            return {
              ok: false as const,
              code: name === 'AbortError' ? 'timeout' : 'fetch-failed',
              corrupted: 0,
              message: String(error),
            };
          } finally {
            clearTimeout(timer);
          }
        },
        {
          url: `${this.options.siteUrl}/file.bin?chaos=${this.counter}`,
          size: this.options.fileSize,
          seed: FILE_SEED,
          timeoutMs,
        },
      );
    } catch (error) {
      // The tab itself failed (its page went away under the evaluation): still a failed download.
      return { ok: false, code: 'evaluate-failed', detail: shortMessage(error), corruptedBytes: 0 };
    }
    if (outcome.ok) return { ok: true, corruptedBytes: 0 };
    return {
      ok: false,
      code: outcome.code,
      detail: outcome.message?.slice(0, 200) ?? '',
      corruptedBytes: outcome.corrupted,
    };
  }
}
