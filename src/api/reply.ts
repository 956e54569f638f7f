import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { log } from '../core/log.ts';
import { StoreNotOpenError } from './opening-store.ts';
import { toldByOutageLog } from './outage-log.ts';

/**
 * The catalogue of the API's error codes (the `error` of every error body, and of WebSocket error frames), like
 * `CC_ERR_*` for the CLI (src/core/errors.ts): clients match on the code, never on the message. The OpenAPI
 * document lists them, and the contract tests refuse an error body whose code is not here.
 */
export const API_ERRORS = {
  bad_request: 'a malformed query parameter, URL, request or WebSocket frame',
  unauthorized: 'a valid x-api-key header is required',
  not_found: 'no such route, or nothing yet for this pair',
  method_not_allowed: 'a known path asked with another method (the Allow header lists them)',
  request_timeout: 'the request was not received in time',
  payload_too_large: 'a request body over 1 MiB',
  unsupported_media_type: 'a request body of a type the API does not read',
  upgrade_required: 'GET /v1/ws asked without Upgrade: websocket',
  request_header_fields_too_large: 'the request line and headers exceed 16 KiB',
  rate_limited: "this API key's rate limit is spent (Retry-After says when to retry)",
  auth_rate_limited: 'too many failed authentications from this address (Retry-After)',
  internal_server_error: 'a fault of the API (logged)',
  service_unavailable: 'unavailable, with no more specific code',
  not_ready: 'the API is still loading the latest predictions',
  not_available: 'this deployment has no such data (no candles store, no pipeline view)',
  store_unavailable: 'a store failed to answer: try again later',
  registry_unavailable: 'the model registry failed to answer: try again later',
  bus_unavailable: 'the transport failed to answer: try again later',
  dashboard_unavailable: 'the dashboard could not be built',
  replay_failed: 'WebSocket: a replay could not read the store (live records still follow)',
} as const;
export type ApiErrorCode = keyof typeof API_ERRORS;

/** Every error the API answers has this shape: a catalogued code and a sentence. */
export const ErrorJson = {
  type: 'object',
  required: ['error', 'message'],
  additionalProperties: false,
  properties: {
    error: {
      type: 'string',
      enum: Object.keys(API_ERRORS),
      description: 'machine-readable code, from the catalogue (src/api/reply.ts)',
    },
    message: { type: 'string' },
  },
} as const;

/** Response schemas for error statuses, for a route's `schema.response`. */
export const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorJson]));

/** The code of an HTTP status (`Not Found` → `not_found`); one the catalogue lacks becomes its class's generic one. */
export function errorCode(status: number): ApiErrorCode {
  const code = (STATUS_CODES[status] ?? 'error').toLowerCase().replace(/[^a-z0-9]+/g, '_');
  if (code in API_ERRORS) return code as ApiErrorCode;
  return status >= 500 ? 'internal_server_error' : 'bad_request';
}

export function fail(
  reply: FastifyReply,
  status: number,
  message: string,
  error?: ApiErrorCode,
): FastifyReply {
  return reply.code(status).send({ error: error ?? errorCode(status), message });
}

/**
 * A refusal before routing. A refused WebSocket upgrade has no HTTP connection to keep alive (and the WebSocket
 * plugin, whose hooks come later, would not close it): the socket is closed once the answer is out.
 */
export function refuse(
  req: FastifyRequest,
  reply: FastifyReply,
  status: number,
  message: string,
  error?: ApiErrorCode,
): void {
  if (req.headers.upgrade !== undefined) reply.raw.once('finish', () => req.raw.socket?.destroy());
  fail(reply, status, message, error);
}

const apiLog = log.child({ service: 'api' });

/**
 * 503 `store_unavailable` for a store read that failed (`message` names the store), logged as a fault with `context`
 * unless the store's `OutageLog` has it (a failure through `answeringWithin`: logged once per outage, then counted).
 * A store still opening (the service waits for it, and says so once in its log) is no fault of the request: its
 * answer says so, with no log line per request.
 */
export function storeUnavailable(
  reply: FastifyReply,
  err: unknown,
  message: string,
  context: string,
): FastifyReply {
  if (err instanceof StoreNotOpenError) return fail(reply, 503, err.message, 'store_unavailable');
  if (!toldByOutageLog(err)) apiLog.error({ err }, context);
  return fail(reply, 503, message, 'store_unavailable');
}

/**
 * An error answered on a raw socket, outside Fastify (a request Node could not parse, a WebSocket handshake ws
 * refuses), in the API's shape; the socket is closed once it is out. A reset or already closed socket gets nothing.
 */
export function rawError(
  socket: Duplex,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: errorCode(status), message });
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  if (socket.writable)
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\n${extra}Connection: close\r\n\r\n${body}`,
    );
  socket.destroy();
}
