import type { FastifyInstance } from 'fastify';
import { METRICS_CONTENT_TYPE, metrics, metricsText, onScrape } from '../../core/metrics.ts';
import type { WsHub } from '../ws.ts';

/**
 * `GET /metrics`: the process's Prometheus metrics (public, like health: scraped from inside the cluster), and the
 * API's own — request durations per route and status (an `onResponse` hook on every route) and WebSocket clients.
 * `serve: false` (`--metrics-port-only`): no route here; the WebSocket clients are still counted for the scrape of
 * `--metrics-port`.
 */
export function metricsRoutes(deps: { hub: WsHub; serve: boolean }) {
  return async (r: FastifyInstance) => {
    const unscrape = onScrape(() => metrics.wsClients.set(deps.hub.size));
    r.addHook('onClose', async () => {
      unscrape();
    });
    if (!deps.serve) return;
    r.get('/metrics', { config: { public: true }, schema: { hide: true } }, async (_req, reply) =>
      reply.header('content-type', METRICS_CONTENT_TYPE).send(await metricsText()),
    );
  };
}

/** Observes every response's duration (registered on the root instance, so it sees every route). */
export function observeDurations(app: FastifyInstance): void {
  app.addHook('onResponse', (req, reply, done) => {
    metrics.httpDuration.observe(
      { method: req.method, route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    done();
  });
}
