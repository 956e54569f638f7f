import type { Duplex } from 'node:stream';
import websocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import { fail, rawError } from '../reply.ts';
import { MAX_FRAME_BYTES, type WsHub } from '../ws.ts';

/**
 * `GET /v1/ws`: live predictions. The WebSocket plugin wraps the handler of every route of its context, so it is
 * registered in a context of its own and the REST routes stay unwrapped.
 */
export function wsRoutes(deps: { hub: WsHub }) {
  return async (r: FastifyInstance) => {
    await r.register(websocket, {
      options: { maxPayload: MAX_FRAME_BYTES },
      // The plugin's default closes each client with no code at all: say why (1001, going away).
      preClose(done) {
        deps.hub.goingAway(
          'the API is shutting down: reconnect (another instance, or this one once restarted)',
        );
        this.websocketServer.close();
        done();
      },
    });
    // A handshake ws refuses (a malformed Sec-WebSocket-Key or -Version): with a listener, ws leaves the answer to it
    // instead of writing its own text/html 400. The request has left the HTTP server: the answer is written raw.
    r.websocketServer.on('wsClientError', (err: Error, socket: Duplex) =>
      rawError(
        socket,
        400,
        `not a valid WebSocket handshake: ${err.message}`,
        /Version/.test(err.message) ? { 'Sec-WebSocket-Version': '13, 8' } : {},
      ),
    );
    r.route({
      method: 'GET',
      url: '/v1/ws',
      // A plain GET (no Upgrade header: a browser tab, curl, a proxy that strips it) gets a JSON 426 saying so;
      // with `websocket: true` the plugin answered it with an empty 404, as if the route did not exist.
      handler: (_req, reply) =>
        fail(
          reply.header('upgrade', 'websocket'),
          426,
          'GET /v1/ws is a WebSocket: open it with a WebSocket client (Upgrade: websocket)',
          'upgrade_required',
        ),
      wsHandler: (socket, req) => deps.hub.accept(socket, req),
      schema: {
        hide: true,
        summary: 'Live predictions over WebSocket',
        description:
          'Send {"type":"subscribe","pairs":["BTC-USD"],"since":<epoch ms, optional>}: predictions with windowEnd > since are replayed, then {"type":"replayed","channel":…,"pair":…}, then live ones follow as {"type":"prediction","data":{…}}, with neither gaps nor duplicates. {"type":"unsubscribe","pairs":[…]} stops. Malformed frames get {"type":"error",…}; flooding closes with 1008, a client that does not read closes with 1013.',
      },
    });
  };
}
