import type { DeadLetter } from '../schemas/dlq.ts';
import { parseRecord } from './kafka/records.ts';
import type { Topic } from './topic.ts';

/**
 * Reading the dead-letter topic back: which dead letters an operator asked for, what they have in common, and which of
 * them can go back to the topic they came from. Pure (no I/O): `cryptocast dlq` (src/cli/commands/dlq.ts) reads the
 * topic and publishes.
 */

export interface DeadLetterFilter {
  service?: string;
  origin?: string;
  kind?: string;
  /** Dead letters written at or after this time (epoch ms). */
  since?: number;
}

export function selectDeadLetters(letters: readonly DeadLetter[], f: DeadLetterFilter): DeadLetter[] {
  return letters.filter(
    (d) =>
      (f.service === undefined || d.service === f.service) &&
      (f.origin === undefined || d.origin === f.origin) &&
      (f.kind === undefined || d.kind === f.kind) &&
      (f.since === undefined || d.ts >= f.since),
  );
}

/** Dead letters of one service, origin and kind: how many, when, and the latest reason. */
export interface DeadLetterGroup {
  service: string;
  origin: string;
  kind: string;
  count: number;
  first: number;
  last: number;
  latestReason: string;
  /** Distinct reasons, counted up to `MAX_REASONS` (a reason often names a value, so they can all differ). */
  reasons: number;
}

const MAX_REASONS = 100;

/** Groups by service, origin and kind; the largest groups first. */
export function groupDeadLetters(letters: readonly DeadLetter[]): DeadLetterGroup[] {
  const groups = new Map<string, DeadLetterGroup & { seen: Set<string> }>();
  for (const d of letters) {
    const id = `${d.service}\u0000${d.origin}\u0000${d.kind}`;
    let g = groups.get(id);
    if (g === undefined) {
      g = {
        service: d.service,
        origin: d.origin,
        kind: d.kind,
        count: 0,
        first: d.ts,
        last: d.ts,
        latestReason: d.reason,
        reasons: 0,
        seen: new Set(),
      };
      groups.set(id, g);
    }
    g.count++;
    if (d.ts < g.first) g.first = d.ts;
    if (d.ts >= g.last) {
      g.last = d.ts;
      g.latestReason = d.reason;
    }
    if (g.seen.size < MAX_REASONS) g.seen.add(d.reason);
    g.reasons = g.seen.size;
  }
  return [...groups.values()]
    .map(({ seen: _, ...g }) => g)
    .sort((a, b) => b.count - a.count || a.service.localeCompare(b.service));
}

/**
 * Dead letters that are copies of one another: a consumer writes one each time it re-reads the record (a restart, a
 * rebalance, a re-read after a failure). The same origin, partition and offset is the same record; without them
 * (a source's reject), the same origin and payload.
 */
export function withoutCopies(letters: readonly DeadLetter[]): { letters: DeadLetter[]; copies: number } {
  const seen = new Set<string>();
  const out: DeadLetter[] = [];
  for (const d of letters) {
    const id =
      d.partition !== undefined && d.offset !== undefined
        ? `${d.origin}\u0000${d.partition}\u0000${d.offset}`
        : `${d.origin}\u0000${d.payload}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(d);
  }
  return { letters: out, copies: letters.length - out.length };
}

export type Revived = { ok: true; value: unknown } | { ok: false; reason: string };

/**
 * The value a dead letter's payload stands for on `topic`, checked as any consumer checks it (the topic's codec for a
 * binary value, else JSON and the schema), or why it cannot go there: it came from another topic, the payload was cut,
 * or it still fails the check. A letter from a source (origin `kraken-ws`, say: a trade the trades service refused)
 * may go to any topic its payload passes. Replaying a letter that fails again would only dead-letter it again.
 */
export function reviveDeadLetter(
  d: DeadLetter,
  topic: Topic<unknown>,
  declared: readonly Topic<unknown>[],
): Revived {
  if (d.origin !== topic.name && declared.some((t) => t.name === d.origin))
    return { ok: false, reason: `it came from the topic ${d.origin}, not ${topic.name}` };
  if (d.truncated)
    return { ok: false, reason: `its payload was cut (${d.payloadBytes} bytes): the original is not kept` };
  let bytes: Buffer;
  if (d.payload.startsWith('base64:')) {
    if (topic.codec === undefined)
      return { ok: false, reason: `a binary payload, and ${topic.name} has no binary encoding` };
    bytes = Buffer.from(d.payload.slice('base64:'.length), 'base64');
    if (!topic.codec.matches(bytes))
      return { ok: false, reason: 'a binary payload the topic’s codec does not read' };
  } else bytes = Buffer.from(d.payload, 'utf8');
  // Read as a consumer reads a record of the topic: the codec, else JSON and the schema.
  const parsed = parseRecord(topic, 0, {
    offset: 0n,
    key: null,
    value: bytes,
    timestamp: 0,
    leaderEpoch: -1,
  });
  return parsed.ok ? { ok: true, value: parsed.record.value } : { ok: false, reason: parsed.reason };
}
