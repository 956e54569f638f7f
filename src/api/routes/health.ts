import type { FastifyInstance } from 'fastify';
import { pairToUrl } from '../../schemas/common.ts';
import type { LatestPredictions } from '../latest.ts';
import { ErrorJson, fail } from '../reply.ts';
import type { WsHub } from '../ws.ts';

/**
 * `GET /v1/health` (liveness) and `GET /v1/ready` (503 until the stores are open, the latest cache is filled and
 * subscribed, and every other view has started). Public.
 */
export function healthRoutes(deps: {
  latest: LatestPredictions;
  hub: WsHub;
  /** Stores still opening (the API listens before they are open). */
  waitingFor?: () => readonly string[] | undefined;
  /** False while the other views (errors, candles, alerts, news) are still starting. */
  viewsStarted?: () => boolean;
}) {
  return async (r: FastifyInstance) => {
    r.get(
      '/v1/health',
      {
        config: { public: true },
        schema: {
          summary: 'Liveness',
          security: [], // no key needed (the document's default says one is)
          response: {
            200: {
              type: 'object',
              required: ['status', 'uptimeS'],
              additionalProperties: false,
              properties: { status: { type: 'string', const: 'ok' }, uptimeS: { type: 'number' } },
            },
          },
        },
      },
      async () => ({ status: 'ok' as const, uptimeS: Math.round(process.uptime()) }),
    );

    r.get(
      '/v1/ready',
      {
        config: { public: true },
        schema: {
          summary:
            'Readiness: the latest predictions are loaded, the predictions topic is subscribed and every other view (errors, candles, alerts, news) has started',
          security: [],
          response: {
            200: {
              type: 'object',
              required: ['status', 'pairs', 'clients'],
              additionalProperties: false,
              properties: {
                status: { type: 'string', const: 'ready' },
                pairs: { type: 'array', items: { type: 'string' } },
                clients: { type: 'integer', description: 'WebSocket connections' },
              },
            },
            503: ErrorJson,
          },
        },
      },
      async (_req, reply) => {
        const waiting = deps.waitingFor?.() ?? [];
        // The reason itself (a host, an error) is for the operator (the log, /ready on --metrics-port), not the public.
        if (waiting.length > 0)
          return fail(
            reply,
            503,
            `waiting for ${waiting.join(', ')} to open (the service log says why)`,
            'store_unavailable',
          );
        if (!deps.latest.ready) return fail(reply, 503, 'loading the latest predictions', 'not_ready');
        // Ready means every route answers with what its topic holds: a view still reading its tail would answer empty.
        if (deps.viewsStarted?.() === false)
          return fail(reply, 503, 'loading the alerts, news and monitoring views', 'not_ready');
        return {
          status: 'ready' as const,
          pairs: deps.latest.knownPairs().map(pairToUrl),
          clients: deps.hub.size,
        };
      },
    );
  };
}
