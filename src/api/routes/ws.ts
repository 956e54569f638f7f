import websocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import type { WsHub } from '../ws.ts';

/**
 * `GET /v1/ws`: live predictions. The WebSocket plugin wraps the handler of every route of its context, so it is
 * registered in a context of its own and the REST routes stay unwrapped.
 */
export function wsRoutes(deps: { hub: WsHub }) {
  return async (r: FastifyInstance) => {
    await r.register(websocket, { options: { maxPayload: 4096 } });
    r.get(
      '/v1/ws',
      {
        websocket: true,
        schema: {
          summary: 'Live predictions over WebSocket',
          description:
            'Send {"type":"subscribe","pairs":["BTC-USD"],"since":<epoch ms, optional>}: predictions with windowEnd > since are replayed, then live ones follow as {"type":"prediction","data":{…}}, with neither gaps nor duplicates. {"type":"unsubscribe","pairs":[…]} stops. Malformed frames get {"type":"error",…}; flooding closes with 1008, a client that does not read closes with 1013.',
        },
      },
      (socket) => deps.hub.accept(socket),
    );
  };
}
