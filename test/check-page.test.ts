import { afterEach, describe, expect, it } from 'vitest';
import { ExitPolicy } from '@underpass/shared/exit';
import { StreamError } from '@underpass/shared/errors';
import type { ByteStream } from '@underpass/shared/streams';
import { TcpDialer } from '../exit-node/src/tcp-dialer.js';
import { CHECK_PAGE_NAME, CheckPageDialer, ExitSockets } from '../scripts/check-page-dialer.js';
import { startCheckPage, type CheckPage } from '../scripts/check-page.js';

/**
 * `npm start`'s check page and the dialer the embedded exit serves it with, over real TCP on 127.0.0.1, with
 * the exit's real TcpDialer and default policy behind it: the page is reached by its name and port only, it
 * tells connections the exit opened from any other, and nothing else local is opened.
 */

const EXIT_KEY = 'test-exit-key';

let page: CheckPage | undefined;
afterEach(async () => {
  await page?.close();
  page = undefined;
});

async function setUp(): Promise<{ page: CheckPage; dialer: CheckPageDialer; exitSockets: ExitSockets }> {
  const exitSockets = new ExitSockets();
  page = await startCheckPage({ port: 0, exitSockets, exitKey: () => EXIT_KEY });
  const dialer = new CheckPageDialer({
    // The exit's own dialer with its default policy: every local address denied.
    policyDialer: new TcpDialer({ policy: new ExitPolicy() }),
    address: page.address,
    port: page.port,
    exitSockets,
  });
  return { page, dialer, exitSockets };
}

/** Sends one HTTP/1.1 GET over `stream` (as a browser would through the tunnel) and collects the answer. */
function httpGet(stream: ByteStream, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk) => chunks.push(Buffer.from(chunk)));
    // The page closes after its answer; the browser's side then ends too (the exit pipes that through).
    stream.on('end', () => stream.end());
    stream.on('close', (error) => (error ? reject(error) : resolve(Buffer.concat(chunks).toString('utf8'))));
    stream.resume();
    stream.write(Buffer.from(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
  });
}

async function denial(promise: Promise<unknown>): Promise<StreamError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StreamError);
  return error as StreamError;
}

describe('check page', () => {
  it('says "through Underpass" and the address it saw for a connection the exit opened', async () => {
    const { page, dialer, exitSockets } = await setUp();
    const stream = await dialer.dial({ kind: 'tcp', host: CHECK_PAGE_NAME, port: page.port });
    expect(exitSockets.size).toBe(1);
    const response = await httpGet(stream, `${CHECK_PAGE_NAME}:${page.port}`);
    expect(response).toMatch(/^HTTP\/1\.1 200 /);
    expect(response).toMatch(/cache-control: no-store/i);
    expect(response).toContain('data-through="true"');
    expect(response).toContain('You reached this page through Underpass');
    expect(response).toContain('<code id="seen-address">127.0.0.1</code>');
    expect(response).toContain(EXIT_KEY);
    expect(page.visits).toEqual([{ throughUnderpass: true, sourceAddress: '127.0.0.1' }]);
    // The record ends with the connection.
    await expect.poll(() => exitSockets.size).toBe(0);
  });

  it('says a request that did not come from the exit did not come through Underpass', async () => {
    const { page } = await setUp();
    const response = await fetch(`http://127.0.0.1:${page.port}/`);
    const body = await response.text();
    expect(response.status).toBe(200);
    expect(body).toContain('data-through="false"');
    expect(body).not.toContain('data-through="true"');
    expect(body).not.toContain('You reached this page through Underpass');
    expect(page.visits).toEqual([{ throughUnderpass: false, sourceAddress: '127.0.0.1' }]);
  });

  it('answers only GET and HEAD on /', async () => {
    const { page } = await setUp();
    expect((await fetch(`http://127.0.0.1:${page.port}/other`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${page.port}/`, { method: 'POST', body: 'x' })).status).toBe(405);
    expect(page.visits).toEqual([]);
  });

  it('serves the name however it is spelt, at its port only', async () => {
    const { page, dialer } = await setUp();
    const stream = await dialer.dial({ kind: 'tcp', host: 'CHECK.Underpass.TEST.', port: page.port });
    expect(await httpGet(stream, 'check')).toContain('data-through="true"');
    const otherPort = page.port === 65535 ? 65534 : page.port + 1;
    const error = await denial(dialer.dial({ kind: 'tcp', host: CHECK_PAGE_NAME, port: otherPort }));
    expect(error.code).toBe('policy-denied');
  });

  it("loosens nothing else: the page's address, by literal or by another name, meets the exit's policy", async () => {
    const { page, dialer, exitSockets } = await setUp();
    for (const host of ['127.0.0.1', 'localhost', '[::1]']) {
      const error = await denial(dialer.dial({ kind: 'tcp', host, port: page.port }));
      expect(error.code).toBe('policy-denied');
    }
    // A name the real resolver does not know fails as it would at any exit.
    const unknown = await denial(dialer.dial({ kind: 'tcp', host: 'other.underpass.test', port: page.port }));
    expect(unknown.code).toBe('dns-failed');
    expect(exitSockets.size).toBe(0);
    expect(page.visits).toEqual([]);
  });

  it('reports a page that is gone as refused', async () => {
    const { page, dialer } = await setUp();
    await page.close();
    const error = await denial(dialer.dial({ kind: 'tcp', host: CHECK_PAGE_NAME, port: page.port }));
    expect(error.code).toBe('refused');
  });
});
