import { mediaChunkSchema, mediaHeadSchema, type MediaHead, type MediaPull } from './media-messages';

/**
 * The asking side of the media channel (media-messages.ts), shared by Chrome's service worker (which turns it
 * into an HTTP response for the media element) and Firefox's player page (which feeds a MediaSource with it):
 * the host's head on a port, then the bytes, pulled one chunk at a time. Both check what the host sends the
 * same way: a head inside the file, chunks that add up to exactly the promised length, or an error.
 */

/** The host answers a head at once (it needs no piece for it); this much silence means it is not serving. */
export const MEDIA_HEAD_TIMEOUT_MS = 5_000;

/** The host's head, or undefined when it said nothing in time. A malformed head throws. */
export function headFrom(
  port: MessagePort,
  timeoutMs: number,
  send: () => void,
): Promise<MediaHead | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      port.onmessage = null;
      resolve(undefined);
    }, timeoutMs);
    port.onmessage = (event: MessageEvent) => {
      clearTimeout(timer);
      port.onmessage = null;
      const head = mediaHeadSchema.safeParse(event.data);
      if (head.success) resolve(head.data);
      else reject(new Error('malformed media head'));
    };
    send();
  });
}

/** Why a body stopped before its last byte. */
export type MediaBodyFailure = 'gone' | 'bad-answer';

/** The error a body's stream fails with; `code` says why. */
export class MediaBodyError extends Error {
  constructor(readonly code: MediaBodyFailure) {
    super(
      code === 'gone'
        ? 'the file is no longer in your downloads'
        : 'the downloads engine sent a malformed chunk or the wrong number of bytes',
    );
    this.name = 'MediaBodyError';
  }
}

/**
 * The body: one pull to the host per chunk the reader reads. Exactly `length` bytes or an error: a host that
 * sends more, or ends early, fails the stream rather than hand over a wrong file.
 */
export function bodyFrom(port: MessagePort, length: number): ReadableStream<Uint8Array> {
  let received = 0;
  const say = (message: MediaPull) => port.postMessage(message);
  const done = () => {
    port.onmessage = null;
    port.close();
  };
  return new ReadableStream<Uint8Array>({
    pull: (controller) =>
      new Promise<void>((resolve) => {
        port.onmessage = (event: MessageEvent) => {
          resolve();
          const chunk = mediaChunkSchema.safeParse(event.data);
          if (!chunk.success) {
            done();
            return controller.error(new MediaBodyError('bad-answer'));
          }
          if (chunk.data.type === 'gone') {
            done();
            return controller.error(new MediaBodyError('gone'));
          }
          if (chunk.data.type === 'end' || received + chunk.data.bytes.length > length) {
            done();
            return controller.error(new MediaBodyError('bad-answer'));
          }
          received += chunk.data.bytes.length;
          controller.enqueue(chunk.data.bytes);
          if (received === length) {
            done();
            controller.close();
          }
        };
        say({ type: 'pull' });
      }),
    cancel: () => {
      say({ type: 'cancel' });
      done();
    },
  });
}
