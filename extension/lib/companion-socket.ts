import type { Clock } from '@underpass/shared/clock';
import { encodeDataPortHello } from '@underpass/shared/data-port';
import { withDeadline } from '@underpass/shared/deadline';
import { errorMessage, UnderpassError } from '@underpass/shared/errors';
import { toSwitchError, truncateReason, type SwitchError } from './switch-error';

/**
 * The offscreen document's data connection to the companion: a WebSocket on 127.0.0.1 that carries the
 * SOCKS connections the companion accepted. The first message proves we are the extension that started it
 * (the secret came over native messaging, which only this extension can open).
 */

export const DEFAULT_COMPANION_SOCKET_TIMEOUT_MS = 5_000;

export type CompanionSocketResult = { ok: true; socket: WebSocket } | ({ ok: false } & SwitchError);

export async function openCompanionSocket(options: {
  WebSocket: typeof WebSocket;
  dataPort: number;
  secret: string;
  timeoutMs?: number;
  clock?: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
}): Promise<CompanionSocketResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_COMPANION_SOCKET_TIMEOUT_MS;
  let socket: WebSocket;
  try {
    socket = new options.WebSocket(`ws://127.0.0.1:${options.dataPort}`);
  } catch (error) {
    return {
      ok: false,
      code: 'companion-unreachable',
      reason: truncateReason(`Cannot open the companion's data port: ${errorMessage(error)}`),
    };
  }
  socket.binaryType = 'arraybuffer';
  let onOpen = (): void => {};
  let onFail = (): void => {};
  const opened = new Promise<void>((resolve, reject) => {
    onOpen = resolve;
    onFail = () =>
      reject(
        new UnderpassError(
          'companion-unreachable',
          `The companion's data port 127.0.0.1:${options.dataPort} refused the connection.`,
        ),
      );
  });
  socket.addEventListener('open', onOpen);
  socket.addEventListener('error', onFail);
  socket.addEventListener('close', onFail);
  try {
    await withDeadline(opened, {
      ms: timeoutMs,
      onTimeout: () =>
        new UnderpassError(
          'companion-timeout',
          `The companion's data port did not answer within ${Math.round(timeoutMs / 1000)} s.`,
        ),
      clock: options.clock,
    });
  } catch (error) {
    socket.close();
    return { ok: false, ...toSwitchError(error, 'companion-unreachable') };
  } finally {
    // From here on the socket's events are its owner's (engine-host's close handler).
    socket.removeEventListener('open', onOpen);
    socket.removeEventListener('error', onFail);
    socket.removeEventListener('close', onFail);
  }
  socket.send(encodeDataPortHello(options.secret));
  return { ok: true, socket };
}
