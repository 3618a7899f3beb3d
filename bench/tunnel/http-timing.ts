import { connect as tcpConnect } from 'node:net';
import type { ByteStream } from '@underpass/shared/streams';

/** One timed HTTP/1.0 GET: time to the first byte of the response and to its end, from `start`. */
export type GetTiming = { firstMs: number; totalMs: number; bytes: number };

const request = (host: string, path: string) => `GET ${path} HTTP/1.0\r\nHost: ${host}\r\n\r\n`;

/** GET over any byte stream (a tunnel stream); the server closes the stream at the end of the response. */
export function timedGet(stream: ByteStream, host: string, path: string, start: number): Promise<GetTiming> {
  let firstMs = -1;
  let bytes = 0;
  return new Promise((resolve, reject) => {
    stream.on('data', (chunk) => {
      if (firstMs < 0) firstMs = performance.now() - start;
      bytes += chunk.length;
    });
    stream.on('end', () => stream.end());
    stream.on('close', (error) =>
      error ? reject(error) : resolve({ firstMs, totalMs: performance.now() - start, bytes }),
    );
    stream.resume();
    stream.write(Buffer.from(request(host, path)));
  });
}

/** The same GET over plain TCP, no tunnel: the baseline. */
export function tcpGet(host: string, port: number, path: string): Promise<GetTiming> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host, port, noDelay: true });
    let firstMs = -1;
    let bytes = 0;
    socket.on('connect', () => socket.write(request(host, path)));
    socket.on('data', (chunk) => {
      if (firstMs < 0) firstMs = performance.now() - start;
      bytes += chunk.length;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve({ firstMs, totalMs: performance.now() - start, bytes }));
  });
}
