import { setTimeout as sleep } from 'node:timers/promises';
import { IS_CONTROL } from '@platformatic/kafka';
import { safeParse } from '../../schemas/compiled-check.ts';
import type { Delivered } from '../bus.ts';
import { summarise } from '../in-process-bus.ts';
import type { Topic } from '../topic.ts';
import {
  FETCH_MAX_BYTES,
  FETCH_PARTITION_MAX_BYTES,
  type FetchRequestPartition,
  ISOLATION,
  LOG_APPEND_TIME,
  MAX_VALUE_BYTES,
  type RawConsumer,
} from './limits.ts';

/** Fetch requests and the records they return, parsed and checked against the topic's schema. */
/** Keys are pairs, a handful of strings: their bytes are made once (the client copies them into the batch). */
export const keyBuffers = new Map<string, Buffer>();
export function keyBuffer(key: string): Buffer {
  let b = keyBuffers.get(key);
  if (b === undefined) {
    b = Buffer.from(key, 'utf8');
    if (keyBuffers.size < 10_000) keyBuffers.set(key, b);
  }
  return b;
}

/** A record as fetched, before parsing. */
export interface RawRecord {
  offset: bigint;
  key: Buffer | null;
  value: Buffer | null;
  /** Epoch ms (exact: below 2^53). */
  timestamp: number;
  leaderEpoch: number;
}

export interface Fetched {
  /** Records at or after the requested offset, in offset order. */
  records: RawRecord[];
  /** The partition's high watermark when it was fetched (the consumer lag, `readToEnd`). */
  highWatermark: bigint;
  /** The offset after the last fetched batch (control batches included): where the next fetch starts. */
  next: bigint;
}

/** What one Fetch round brought. */
export interface FetchRound {
  /** The partitions that had data (with incremental fetch sessions the broker leaves the others out). */
  fetched: Map<number, Fetched>;
  /**
   * The partitions asked for that have no leader right now (an election, the only replica's broker away): no request
   * was sent for them, so nothing coming back says nothing of their records — a read must wait for their leader.
   */
  leaderless: number[];
}

/**
 * One Fetch round: the given partitions from their positions, one request per partition leader. A partition without a
 * leader in the client's cached metadata is looked up again at once (the cache lives seconds); one that still has none
 * is skipped this round and named in `leaderless`. A round that sends no request at all waits `maxWaitTime` first, as
 * a long poll that found nothing would: a caller looping on rounds does not spin while a leader is elected.
 */
export async function fetchRecords(
  client: RawConsumer,
  topic: string,
  positions: ReadonlyMap<number, bigint>,
  maxWaitTime: number,
): Promise<FetchRound> {
  let tm = (await client.metadata({ topics: [topic] })).topics.get(topic);
  const hasLeader = (partition: number) => (tm?.partitions[partition]?.leader ?? -1) >= 0;
  if (tm !== undefined && [...positions.keys()].some((p) => !hasLeader(p)))
    tm = (await client.metadata({ topics: [topic], forceUpdate: true })).topics.get(topic);
  if (tm === undefined) throw new Error(`topic ${topic} is not in the cluster metadata`);
  const byLeader = new Map<number, FetchRequestPartition[]>();
  const leaderless: number[] = [];
  for (const [partition, fetchOffset] of positions) {
    const leader = tm.partitions[partition]?.leader ?? -1;
    if (leader < 0) {
      leaderless.push(partition);
      continue;
    }
    let list = byLeader.get(leader);
    if (list === undefined) {
      list = [];
      byLeader.set(leader, list);
    }
    list.push({
      partition,
      fetchOffset,
      partitionMaxBytes: FETCH_PARTITION_MAX_BYTES,
      currentLeaderEpoch: -1,
      lastFetchedEpoch: -1,
    });
  }
  if (byLeader.size === 0) await sleep(maxWaitTime);
  const topicId = tm.id;
  const responses = await Promise.all(
    [...byLeader].map(([node, partitions]) =>
      client.fetch({
        node,
        topics: [{ topicId, partitions }],
        maxWaitTime,
        minBytes: 1,
        maxBytes: FETCH_MAX_BYTES,
        isolationLevel: ISOLATION,
      }),
    ),
  );
  const out = new Map<number, Fetched>();
  for (const response of responses) {
    for (const tr of response.responses) {
      for (const pr of tr.partitions) {
        const requested = positions.get(pr.partitionIndex);
        // A fetch session can return partitions that were not asked for this time: ignore them.
        if (requested === undefined || !pr.records || pr.records.length === 0) continue;
        const records: RawRecord[] = [];
        let next = requested;
        for (const batch of pr.records) {
          const end = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n;
          if (end <= requested) continue;
          // Control batches (transaction markers) take offsets but carry no data.
          if ((batch.attributes & IS_CONTROL) === 0) {
            const appendTime = (batch.attributes & LOG_APPEND_TIME) !== 0;
            // Numbers, not BigInts, per record: one allocation less each.
            const firstTs = Number(batch.firstTimestamp);
            const maxTs = Number(batch.maxTimestamp);
            for (const r of batch.records) {
              const offset = batch.firstOffset + smallBigInt(r.offsetDelta);
              // A batch is returned whole: skip what precedes the requested offset.
              if (offset < requested) continue;
              records.push({
                offset,
                key: r.key,
                value: r.value,
                timestamp: appendTime ? maxTs : firstTs + Number(r.timestampDelta),
                leaderEpoch: batch.partitionLeaderEpoch,
              });
            }
          }
          if (end > next) next = end;
        }
        if (next > requested)
          out.set(pr.partitionIndex, { records, next, highWatermark: BigInt(pr.highWatermark) });
      }
    }
  }
  return { fetched: out, leaderless };
}

/** A record key as text; keys are pairs, so consecutive records mostly repeat the last one: no new string then. */
let lastKeyBytes: Buffer | undefined;
let lastKeyText = '';
export function keyText(key: Buffer | null): string {
  if (key === null) return '';
  if (lastKeyBytes === undefined || !key.equals(lastKeyBytes)) {
    lastKeyBytes = Buffer.from(key); // a copy: the fetched bytes are the client's
    lastKeyText = key.toString('utf8');
  }
  return lastKeyText;
}

/** BigInts of small offset deltas, made once: one allocation less per record. */
export const SMALL_BIGINTS = Array.from({ length: 1 << 16 }, (_, i) => BigInt(i));
export const smallBigInt = (n: number): bigint => SMALL_BIGINTS[n] ?? BigInt(n);

export type Parsed<T> = { ok: true; record: Delivered<T> } | { ok: false; reason: string };

export function parseRecord<T>(topic: Topic<T>, partition: number, r: RawRecord): Parsed<T> {
  if (r.value === null) return { ok: false, reason: 'no value (null record)' };
  if (r.value.length > MAX_VALUE_BYTES)
    return { ok: false, reason: `value of ${r.value.length} bytes exceeds ${MAX_VALUE_BYTES}` };
  // A binary value (the topic's codec): decoded and checked by the codec, no JSON, no schema walk.
  if (topic.codec?.matches(r.value)) {
    const value = topic.codec.decode(r.value);
    if (typeof value === 'string') return { ok: false, reason: value };
    return {
      ok: true,
      record: {
        topic: topic.name,
        partition,
        offset: r.offset,
        key: keyText(r.key),
        value,
        timestamp: r.timestamp,
      },
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(r.value.toString('utf8'));
  } catch (e) {
    return { ok: false, reason: `not JSON: ${(e as Error).message}` };
  }
  // Plain safeParse: these values are handed to a handler, not re-published in-process, so marking them
  // (validate()) would only cost time.
  const v = safeParse(topic.schema, json);
  if (!v.success) return { ok: false, reason: summarise(v.error) };
  return {
    ok: true,
    record: {
      topic: topic.name,
      partition,
      offset: r.offset,
      key: keyText(r.key),
      value: v.data,
      timestamp: r.timestamp,
    },
  };
}
