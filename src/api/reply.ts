import { STATUS_CODES } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Every error the API answers has this shape: a machine-readable code and a sentence. */
export const ErrorJson = {
  type: 'object',
  required: ['error', 'message'],
  additionalProperties: false,
  properties: {
    error: { type: 'string', description: 'machine-readable code, e.g. bad_request, not_found' },
    message: { type: 'string' },
  },
} as const;

/** Response schemas for error statuses, for a route's `schema.response`. */
export const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorJson]));

export function errorCode(status: number): string {
  return (STATUS_CODES[status] ?? 'error').toLowerCase().replace(/[^a-z0-9]+/g, '_');
}

export function fail(reply: FastifyReply, status: number, message: string, error?: string): FastifyReply {
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
  error?: string,
): void {
  if (req.headers.upgrade !== undefined) reply.raw.once('finish', () => req.raw.socket?.destroy());
  fail(reply, status, message, error);
}
