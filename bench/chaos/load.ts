/**
 * What the protected user does all through the run: page loads in one tab and hash-checked downloads in
 * another, one after the other, each with a deadline. Every attempt is recorded with its times, its outcome
 * and, for a failure, a code (Chromium's net::ERR_… for a page, ours for a download). Bytes that arrive but
 * differ from what the website sent are counted as corrupted; a short or failed transfer is a failure, not
 * corruption.
 */
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
  /** Bytes delivered that differ from the website's at the same offset. */
  corruptedBytes: number;
};

export type LoadOptions = {
  context: BrowserContext;
  siteUrl: string;
  /** The exact body of the website's page, read directly before the run. */
  pageBody: Buffer;
  fileSize: number;
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

type DownloadOutcome =
  | { ok: true }
  | { ok: false; code: string; body?: string; message?: string };

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

export class UserLoad {
  readonly records: RequestRecord[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private pageTab: Page | undefined;
  private downloadTab: Page | undefined;
  private readonly expectedFile: Buffer;
  private readonly now: () => number;
  private counter = 0;

  constructor(private readonly options: LoadOptions) {
    this.expectedFile = deterministicBytes(options.fileSize);
    this.now = options.now ?? Date.now;
  }

  /** Opens the two tabs (the download tab on the website, so its fetches are same-origin) and starts. */
  async start(): Promise<void> {
    this.pageTab = await this.options.context.newPage();
    this.downloadTab = await this.options.context.newPage();
    await this.downloadTab.goto(`${this.options.siteUrl}/`, { timeout: 60_000 });
    this.running = true;
    this.loops = [this.loop('page'), this.loop('download')];
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
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
      if (response.status() !== 200) return { ok: false, code: `http-${response.status()}`, corruptedBytes: 0 };
      const body = await response.body();
      const corruptedBytes = differingBytes(body, this.options.pageBody);
      if (corruptedBytes > 0) return { ok: false, code: 'corrupted', corruptedBytes };
      if (body.length !== this.options.pageBody.length) return { ok: false, code: 'truncated', corruptedBytes: 0 };
      return { ok: true, corruptedBytes: 0 };
    } catch (error) {
      return { ok: false, code: navigationErrorCode(error), corruptedBytes: 0 };
    }
  }

  private async download(): Promise<Omit<RequestRecord, 'kind' | 'startedAt' | 'endedAt'>> {
    const tab = this.downloadTab!;
    this.counter += 1;
    const timeoutMs = this.options.downloadTimeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS;
    let outcome: DownloadOutcome;
    try {
      outcome = await tab.evaluate(
        async ({ url, sha256, timeoutMs: deadline }) => {
          const abort = new AbortController();
          const timer = setTimeout(() => abort.abort(), deadline);
          try {
            const response = await fetch(url, { cache: 'no-store', signal: abort.signal });
            if (response.status !== 200) return { ok: false as const, code: `http-${response.status}` };
            const bytes = new Uint8Array(await response.arrayBuffer());
            const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
            const hex = [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
            if (hex === sha256) return { ok: true as const };
            // Rare: send the body back so the harness can count which bytes differ.
            let binary = '';
            for (let i = 0; i < bytes.length; i += 0x8000) {
              binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
            }
            return { ok: false as const, code: 'hash-mismatch', body: btoa(binary) };
          } catch (error) {
            const name = error instanceof Error ? error.name : '';
            return {
              ok: false as const,
              code: name === 'AbortError' ? 'timeout' : 'fetch-failed',
              message: String(error),
            };
          } finally {
            clearTimeout(timer);
          }
        },
        {
          url: `${this.options.siteUrl}/file.bin?chaos=${this.counter}`,
          sha256: this.options.fileSha256,
          timeoutMs,
        },
      );
    } catch {
      // The tab itself failed (its page went away under the evaluation): still a failed download.
      return { ok: false, code: 'evaluate-failed', corruptedBytes: 0 };
    }
    if (outcome.ok) return { ok: true, corruptedBytes: 0 };
    if (outcome.code !== 'hash-mismatch' || outcome.body === undefined) {
      return { ok: false, code: outcome.code, corruptedBytes: 0 };
    }
    const received = Buffer.from(outcome.body, 'base64');
    const corruptedBytes = differingBytes(received, this.expectedFile);
    const code = corruptedBytes > 0 ? 'corrupted' : 'truncated';
    return { ok: false, code, corruptedBytes };
  }
}
