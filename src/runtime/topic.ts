import type { z } from 'zod';

/**
 * A typed topic: a name, a runtime schema (validated on every consume from an untrusted transport and on
 * every publish), and the record key (the pair, so one pair always lands in one partition, in order).
 */
export interface Topic<T> {
  readonly name: string;
  /** What flows on it and its key, for the AsyncAPI document (`cryptocast schemas`). */
  readonly description: string;
  readonly schema: z.ZodType<T>;
  key(value: T): string;
  /** Kafka partitions when the topic is created by cryptocast. */
  readonly partitions: number;
  /** Log compaction (latest value per key kept) instead of time retention. */
  readonly compacted?: boolean;
  /** `retention.ms` when the topic is created by cryptocast (default: the broker's `log.retention.*`). */
  readonly retentionMs?: number;
  /**
   * `segment.ms` when the topic is created by cryptocast (default: the broker's, a week). Kafka never compacts the
   * active segment: a compacted topic read whole holds every record written since its segment rolled.
   */
  readonly segmentMs?: number;
  /**
   * A binary wire format besides JSON (Kafka): producers write it unless told to write JSON, consumers read both
   * (`matches` tells a binary value from JSON text). `decode` checks what the schema checks, or says why not.
   */
  readonly codec?: TopicCodec<T>;
}

export interface TopicCodec<T> {
  matches(bytes: Uint8Array): boolean;
  encode(value: T): Buffer;
  decode(bytes: Buffer): T | string;
}

export function defineTopic<T>(t: Topic<T>): Topic<T> {
  return Object.freeze(t);
}
