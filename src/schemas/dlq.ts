import { z } from 'zod';
import { EpochMs } from './common.ts';

/** Largest original payload kept in a dead letter; longer ones are cut and flagged. */
export const DLQ_MAX_PAYLOAD_CHARS = 64 * 1024;
/**
 * Largest original key kept. Kafka takes a record's key as bytes; a garbled one (200 KB of control bytes, each
 * `\u0001` in JSON) made a dead letter over the broker's 1 MiB message limit, refused for good: the partition
 * retried it for ever and the records behind it never flowed. With both cuts a dead letter stays under half that.
 */
export const DLQ_MAX_KEY_CHARS = 1024;

/**
 * A rejected message: why, where it came from, and the original payload (as text), so that nothing accepted
 * is lost silently and every reject can be inspected or replayed.
 */
export const DeadLetterSchema = z.object({
  v: z.literal(1),
  /** The service or connector that rejected it, e.g. `candles`, `ingest:kraken-ws`. */
  service: z.string().min(1),
  /** Where the payload came from: a topic name, or an external source such as `kraken-ws`. */
  origin: z.string().min(1),
  /** Machine-friendly category: `invalid`, `late`, `parse`, `exchange-error`, ... */
  kind: z.string().min(1),
  reason: z.string().min(1),
  payload: z.string(),
  payloadBytes: z.number().int().nonnegative(),
  truncated: z.boolean(),
  key: z.string().optional(),
  partition: z.number().int().nonnegative().optional(),
  offset: z.string().optional(),
  ts: EpochMs,
});
export type DeadLetter = z.infer<typeof DeadLetterSchema>;

export function deadLetter(args: {
  service: string;
  origin: string;
  kind: string;
  reason: string;
  payload: unknown;
  key?: string;
  partition?: number;
  offset?: bigint | number | string;
  now?: number;
}): DeadLetter {
  let text: string;
  if (typeof args.payload === 'string') text = args.payload;
  else if (args.payload instanceof Uint8Array) text = Buffer.from(args.payload).toString('utf8');
  else {
    try {
      text = JSON.stringify(args.payload) ?? String(args.payload);
    } catch {
      text = String(args.payload);
    }
  }
  const truncated = text.length > DLQ_MAX_PAYLOAD_CHARS;
  const dl: DeadLetter = {
    v: 1,
    service: args.service,
    origin: args.origin,
    kind: args.kind,
    reason: args.reason.slice(0, 2000) || 'unknown',
    payload: truncated ? text.slice(0, DLQ_MAX_PAYLOAD_CHARS) : text,
    payloadBytes: Buffer.byteLength(text),
    truncated,
    ts: args.now ?? Date.now(),
  };
  if (args.key !== undefined) dl.key = args.key.slice(0, DLQ_MAX_KEY_CHARS);
  if (args.partition !== undefined) dl.partition = args.partition;
  if (args.offset !== undefined) dl.offset = String(args.offset);
  return dl;
}
