/**
 * The offscreen document's data connection to the companion: a WebSocket on 127.0.0.1 that carries the
 * SOCKS connections the companion accepted. The first message proves we are the extension that started it
 * (the secret came over native messaging, which only this extension can open).
 */

export const COMPANION_SOCKET_TIMEOUT_MS = 5_000;

export type CompanionSocketResult =
  { ok: true; socket: WebSocket } | { ok: false; code: string; message: string };

export function openCompanionSocket(options: {
  WebSocket: typeof WebSocket;
  dataPort: number;
  secret: string;
  timeoutMs?: number;
}): Promise<CompanionSocketResult> {
  const timeoutMs = options.timeoutMs ?? COMPANION_SOCKET_TIMEOUT_MS;
  return new Promise((resolve) => {
    let socket: WebSocket;
    try {
      socket = new options.WebSocket(`ws://127.0.0.1:${options.dataPort}`);
    } catch (error) {
      resolve({
        ok: false,
        code: 'companion-unreachable',
        message: `Cannot open the companion's data port: ${String(error)}`,
      });
      return;
    }
    socket.binaryType = 'arraybuffer';
    let settled = false;
    const finish = (result: CompanionSocketResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeEventListener('open', onOpen);
      socket.removeEventListener('error', onFail);
      socket.removeEventListener('close', onFail);
      if (!result.ok) socket.close();
      resolve(result);
    };
    const onOpen = () => {
      socket.send(JSON.stringify({ type: 'hello', secret: options.secret }));
      finish({ ok: true, socket });
    };
    const onFail = () =>
      finish({
        ok: false,
        code: 'companion-unreachable',
        message: `The companion's data port 127.0.0.1:${options.dataPort} refused the connection.`,
      });
    const timer = setTimeout(
      () =>
        finish({
          ok: false,
          code: 'companion-timeout',
          message: `The companion's data port did not answer within ${Math.round(timeoutMs / 1000)} s.`,
        }),
      timeoutMs,
    );
    socket.addEventListener('open', onOpen);
    socket.addEventListener('error', onFail);
    socket.addEventListener('close', onFail);
  });
}
