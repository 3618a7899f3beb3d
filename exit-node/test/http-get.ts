import { createHash } from 'node:crypto';
import type { ByteStream } from '@underpass/shared/streams';

export interface HttpResult {
  status: string;
  bodyBytes: number;
  sha256: string;
}

/**
 * One HTTP/1.0 GET over a tunnel stream. The body is hashed as it arrives rather than kept, so a 100 MB
 * download holds no more than the stream's window in memory.
 */
export function httpGet(stream: ByteStream, host: string, path: string): Promise<HttpResult> {
  const hash = createHash('sha256');
  let head = Buffer.alloc(0);
  let status: string | undefined;
  let bodyBytes = 0;
  return new Promise((resolve, reject) => {
    stream.on('data', (chunk) => {
      if (status !== undefined) {
        hash.update(chunk);
        bodyBytes += chunk.length;
        return;
      }
      head = Buffer.concat([head, chunk]);
      const split = head.indexOf('\r\n\r\n');
      if (split === -1) return;
      status = head.subarray(0, head.indexOf('\r\n')).toString();
      const body = head.subarray(split + 4);
      hash.update(body);
      bodyBytes += body.length;
    });
    // HTTP/1.0: the server ends its side after the response; then we end ours, which closes the stream.
    stream.on('end', () => stream.end());
    stream.on('close', (error) => {
      if (error) reject(error);
      else resolve({ status: status ?? '', bodyBytes, sha256: hash.digest('hex') });
    });
    stream.resume();
    stream.write(Buffer.from(`GET ${path} HTTP/1.0\r\nHost: ${host}\r\n\r\n`));
  });
}
