/**
 * The HTTP routes served beside the WebSocket upgrade, on the same port: GET (and HEAD) /healthz, /metrics
 * and /v1/exits; 404 for anything else. JSON answers are never cached and readable from any origin (the list
 * of exits is public).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorMessage } from '@underpass/shared/errors';
import type { Logger } from '@underpass/shared/logger';
import type { ExitSummary } from './broker.js';
import type { SignalingMetrics } from './metrics.js';

export type RouteSources = {
  /** Once shutdown began, /healthz answers 503 so that load balancers stop sending new peers. */
  shuttingDown: () => boolean;
  metrics: Pick<SignalingMetrics, 'text' | 'contentType'>;
  listExits: () => Promise<ExitSummary[]>;
  logger: Logger;
};

export function httpRoutes(sources: RouteSources): (req: IncomingMessage, res: ServerResponse) => void {
  const { metrics, logger } = sources;
  return (req, res) => {
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      return json(res, 404, { error: 'not-found' });
    }
    const readable = req.method === 'GET' || req.method === 'HEAD';
    if (readable && pathname === '/healthz') {
      if (sources.shuttingDown()) return json(res, 503, { ok: false });
      return json(res, 200, { ok: true });
    }
    if (readable && pathname === '/metrics') {
      metrics.text().then(
        (text) => {
          res.writeHead(200, {
            'content-type': metrics.contentType,
            'content-length': Buffer.byteLength(text),
            'cache-control': 'no-store',
          });
          res.end(req.method === 'HEAD' ? undefined : text);
        },
        (error: unknown) => {
          logger.error({ err: errorMessage(error) }, 'cannot collect metrics');
          json(res, 500, { error: 'internal' });
        },
      );
      return;
    }
    if (readable && pathname === '/v1/exits') {
      sources.listExits().then(
        (exits) => json(res, 200, { exits }),
        (error: unknown) => {
          logger.error({ err: errorMessage(error) }, 'cannot list exits');
          json(res, 500, { error: 'internal' });
        },
      );
      return;
    }
    json(res, 404, { error: 'not-found' });
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'access-control-allow-origin': '*',
  });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}
