import { type Consumer, FetchIsolationLevels } from '@platformatic/kafka';

/** Sizes, waits and back-offs of the Kafka transport, measured where a comment says so. */
/** The broker refuses record batches over `max.message.bytes` (1 MiB by default): stay well under per partition. */
export const MAX_PARTITION_BATCH_BYTES = 768 * 1024;
/** Bytes per produce request at most (all partitions together). */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/** Per-record overhead in a record batch (varint lengths, deltas, attributes), an upper estimate. */
export const RECORD_OVERHEAD_BYTES = 24;
/** Larger values are dead-lettered without being parsed (the broker's own limit is about 1 MiB). */
export const MAX_VALUE_BYTES = 4 * 1024 * 1024;
/** Long-poll time of a fetch: how long an idle subscription waits for data (and `stop()` at most waits). */
export const FETCH_MAX_WAIT_MS = 250;
// Per fetch: every record of a response is decoded into objects at once and lives until its partition's batch is
// handled, so the fetch size bounds the working set (256 KiB is ~4,000 binary trades; 4 MiB per partition kept a
// candle service above 500 MiB RSS) without costing throughput (measured: 256 KiB was as fast as 1 and 2 MiB). The
// broker still returns a whole record batch larger than this (a producer's batch is up to 768 KiB).
export const FETCH_MAX_BYTES = 4 * 1024 * 1024;
export const FETCH_PARTITION_MAX_BYTES = 256 * 1024;
/** Batch attribute bit: the timestamps are the broker's append time (topic config LogAppendTime). */
export const LOG_APPEND_TIME = 0x08;
/** Nothing here uses transactions, but should a producer ever do, consumers must not see aborted records. */
export const ISOLATION = FetchIsolationLevels.READ_COMMITTED;
/** Back-off of a subscription whose fetch failed (broker away, leadership moving; the client already retried). */
export const FETCH_BACKOFF = { initialMs: 100, maxMs: 5_000 };
/**
 * A batch that holds its member's rejoin (a rebalance waits for it) is given back this long before the rebalance
 * timeout (`Batch.signal`): time for the client to have heard of the rebalance (a heartbeat, at most 1 s after the
 * broker began it) and for the handler to let go and the member to rejoin before the broker removes it.
 */
export const GIVE_BACK_MARGIN_MS = 5_000;
/** Back-off before a partition whose handler failed is re-read from its last commit. */
export const HANDLER_BACKOFF = { initialMs: 100, maxMs: 10_000 };

export type RawConsumer = Consumer<Buffer, Buffer, Buffer, Buffer>;
export type FetchRequestPartition = Parameters<
  RawConsumer['fetch']
>[0]['topics'][number]['partitions'][number];
