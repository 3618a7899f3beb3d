import type { Link } from '../links/link.js';
import { linkHasRoom } from '../links/backpressure.js';
import { Mux, type MuxOptions } from '../tunnel/mux.js';

export type CreateMux = (options: MuxOptions) => Mux;

/**
 * A mux whose frames are the messages of a link, unencrypted: the data port's framing (PROTOCOL.md §4'), the
 * same on both ends — the companion is the initiator, the extension the acceptor. A congested link holds the
 * mux's DATA until it drains; when either ends, the other ends with the same error. `createMux` lets a test
 * watch the mux.
 */
export function muxOverLink(
  link: Link,
  role: MuxOptions['role'],
  createMux: CreateMux = (options) => new Mux(options),
): Mux {
  const mux = createMux({
    role,
    send: (frame) => link.send(frame),
    canSend: () => linkHasRoom(link),
  });
  link.on('message', (frame) => mux.receive(frame));
  link.on('drain', () => mux.drain());
  link.on('close', (error) => mux.close(error));
  mux.on('close', (error) => link.close(error));
  return mux;
}
