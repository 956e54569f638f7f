import { loadStreamSetting, parseDuration } from '../../config/config.ts';
import { ERR, fail, UsageError } from '../../core/errors.ts';
import type { Bus } from '../../runtime/bus.ts';
import { connectBus } from '../../runtime/connect.ts';
import {
  type DeadLetterFilter,
  groupDeadLetters,
  reviveDeadLetter,
  selectDeadLetters,
  withoutCopies,
} from '../../runtime/dead-letters.ts';
import type { Topic } from '../../runtime/topic.ts';
import type { DeadLetter } from '../../schemas/dlq.ts';
import { topics } from '../../schemas/topics.ts';
import { declaredTopics } from './topics.ts';

/**
 * `cryptocast dlq list|replay`: what the services dead-lettered and why, and sending back what should have passed once
 * its cause is fixed (a price guard too tight, a schema a producer now meets, a bug in a handler). Reads the latest
 * `--limit` records of the `dlq` topic on Kafka; the in-process bus of `run` keeps its dead letters in memory only.
 */
interface Flags {
  bus?: string;
  to?: string;
  service?: string;
  origin?: string;
  kind?: string;
  since?: string;
  limit?: string;
  timeout?: string;
  json?: boolean;
  records?: boolean;
  dryRun?: boolean;
}

/** Letters published at once by a replay: small produce requests, and progress to show on a large replay. */
const REPLAY_BATCH = 500;

export async function listCommand(opts: Flags): Promise<void> {
  const { filter, limit, timeoutMs } = parseFlags(opts);
  await withDeadLetters(opts, limit, timeoutMs, async (all) => {
    const letters = selectDeadLetters(all, filter);
    const groups = groupDeadLetters(letters);
    const cut = cutWarning(all, limit, filter);
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ read: all.length, limit, cut: cut !== undefined, matching: letters.length, groups }, null, 2)}\n`,
      );
      // One JSON line per letter: a large listing is never one giant string.
      if (opts.records) for (const d of letters) process.stdout.write(`${JSON.stringify(d)}\n`);
      return;
    }
    if (cut !== undefined) process.stderr.write(`${cut}\n`);
    if (letters.length === 0) {
      process.stdout.write(`no dead letters${describe(filter)} among the latest ${all.length} on dlq\n`);
      return;
    }
    process.stdout.write(
      `${letters.length} dead letters${describe(filter)} among the latest ${all.length} on dlq (--limit ${limit})\n`,
    );
    table(
      ['count', 'service', 'origin', 'kind', 'first', 'last', 'reasons', 'latest reason'],
      groups.map((g) => [
        String(g.count),
        g.service,
        g.origin,
        g.kind,
        time(g.first),
        time(g.last),
        String(g.reasons),
        g.latestReason,
      ]),
    );
    if (opts.records) {
      process.stdout.write('\n');
      table(
        ['time', 'service', 'origin', 'kind', 'key', 'offset', 'reason'],
        letters.map((d) => [time(d.ts), d.service, d.origin, d.kind, d.key ?? '', d.offset ?? '', d.reason]),
      );
    }
  });
}

export async function replayCommand(opts: Flags): Promise<void> {
  const { filter, limit, timeoutMs } = parseFlags(opts);
  const replayable = declaredTopics().filter((t) => t !== topics.dlq);
  if (opts.to === undefined)
    throw new UsageError(
      `dlq replay needs --to TOPIC: the topic the payloads go to (${replayable.map((t) => t.name).join(', ')})`,
    );
  const target = replayable.find((t) => t.name === opts.to);
  if (target === undefined)
    throw new UsageError(
      `--to ${opts.to} is not a topic dead letters can go to: one of ${replayable.map((t) => t.name).join(', ')}`,
    );
  await withDeadLetters(opts, limit, timeoutMs, async (all, bus) => {
    const { letters, copies } = withoutCopies(selectDeadLetters(all, filter));
    const values: unknown[] = [];
    const refused = new Map<string, number>();
    for (const d of letters) {
      const r = reviveDeadLetter(d, target, declaredTopics());
      if (r.ok) values.push(r.value);
      else refused.set(r.reason, (refused.get(r.reason) ?? 0) + 1);
    }
    const cut = cutWarning(all, limit, filter);
    if (cut !== undefined) process.stderr.write(`${cut}\n`);
    const published = opts.dryRun
      ? 0
      : await publishInBatches(bus, target, values, { ms: timeoutMs, label: opts.timeout ?? '30s' });
    const notReplayable = [...refused]
      .sort((a, b) => b[1] - a[1])
      .map(([reason, count]) => ({ reason, count }));
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ read: all.length, cut: cut !== undefined, matching: letters.length + copies, copies, replayable: values.length, published, dryRun: Boolean(opts.dryRun), to: target.name, notReplayable }, null, 2)}\n`,
      );
      return;
    }
    process.stdout.write(
      `${letters.length + copies} dead letters${describe(filter)} among the latest ${all.length} on dlq` +
        `${copies > 0 ? ` (${copies} copies of others, skipped)` : ''}: ${values.length} ${
          opts.dryRun ? 'would be published' : 'published'
        } to ${target.name}, ${letters.length - values.length} not replayable\n`,
    );
    for (const { reason, count } of notReplayable.slice(0, 10))
      process.stdout.write(`  ${String(count).padStart(6)}  ${reason}\n`);
    if (notReplayable.length > 10)
      process.stdout.write(`  … and ${notReplayable.length - 10} other reasons\n`);
    if (published > 0)
      process.stdout.write(
        'the dead letters stay on dlq (a replay copies, it does not move): narrow the next replay with --since\n',
      );
  });
}

/**
 * Publishes in batches, saying how far it got (stderr), and on a failure how many went out before it. Each batch has
 * `timeout` to be acknowledged: the bus waits for a broker that went away (services must), and a broker that went
 * silent (a host gone, a network partition: no connection is refused) would hold the command for ever. Then the bus
 * is closed, which ends its wait, and only the acknowledged batches are counted as published.
 */
export async function publishInBatches(
  bus: Bus,
  topic: Topic<unknown>,
  values: readonly unknown[],
  timeout: { ms: number; label: string },
): Promise<number> {
  let done = 0;
  try {
    for (; done < values.length; ) {
      const batch = values.slice(done, done + REPLAY_BATCH);
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          void bus.close().catch(() => {});
          reject(
            new Error(`the broker did not acknowledge the next ${batch.length} within ${timeout.label}`),
          );
        }, timeout.ms);
      });
      try {
        const sent = bus.publish(topic, batch);
        sent.catch(() => {}); // once given up on, its failure (the bus closed) is the timeout's, already reported
        await Promise.race([sent, expired]);
      } finally {
        clearTimeout(timer);
      }
      done += batch.length;
      if (values.length > REPLAY_BATCH) process.stderr.write(`published ${done} of ${values.length}\n`);
    }
  } catch (err) {
    throw fail(
      ERR.BUS,
      `publishing to ${topic.name} failed after ${done} of ${values.length}: ${(err as Error).message}`,
      {
        cause: err,
        hint: `the first ${done} are on ${topic.name} (and the batch in flight may be, in part): a second replay publishes them again (consumers are idempotent on their keys, a few may count twice)`,
      },
    );
  }
  return done;
}

function parseFlags(opts: Flags): { filter: DeadLetterFilter; limit: number; timeoutMs: number } {
  const limit = Number(opts.limit ?? '1000');
  if (!Number.isInteger(limit) || limit < 1)
    throw new UsageError(`--limit must be a positive integer, got "${opts.limit}"`);
  const timeoutMs = parseDuration(opts.timeout ?? '30s', '--timeout');
  if (!(timeoutMs > 0)) throw new UsageError(`--timeout must be above zero, got "${opts.timeout}"`);
  const filter: DeadLetterFilter = {};
  if (opts.service !== undefined) filter.service = opts.service;
  if (opts.origin !== undefined) filter.origin = opts.origin;
  if (opts.kind !== undefined) filter.kind = opts.kind;
  if (opts.since !== undefined) {
    const ms = parseDuration(opts.since, '--since');
    if (!(ms > 0)) throw new UsageError(`--since must be above zero, got "${opts.since}"`);
    filter.since = Date.now() - ms;
  }
  return { filter, limit, timeoutMs };
}

/** Reads the latest `limit` dead letters; a broker that does not answer within the timeout ends the command. */
async function withDeadLetters(
  opts: Flags,
  limit: number,
  timeoutMs: number,
  work: (letters: DeadLetter[], bus: Bus) => Promise<void>,
): Promise<void> {
  const url = loadStreamSetting('bus', opts.bus);
  if (!url.startsWith('kafka://'))
    throw fail(
      ERR.CONFIG,
      'the dead-letter topic is read from Kafka: give --bus kafka://host:port (or CRYPTOCAST_BUS)',
      {
        hint: 'the in-process bus of `cryptocast run` keeps dead letters in memory: its summary counts them',
      },
    );
  const bus = await connectBus(url);
  let timedOut = false;
  // The bus waits for a broker that is away (services must); a command gives up, closing the bus, which ends the wait.
  const timer = setTimeout(() => {
    timedOut = true;
    void bus.close();
  }, timeoutMs);
  let tail: DeadLetter[];
  try {
    tail = (await bus.readTail(topics.dlq, limit)).map((r) => r.value);
  } catch (err) {
    throw timedOut
      ? fail(ERR.BUS, `the broker at ${url} did not answer within ${opts.timeout ?? '30s'}`, { cause: err })
      : err;
  } finally {
    clearTimeout(timer);
  }
  try {
    await work(tail, bus);
  } finally {
    await bus.close();
  }
}

/** Said when the read stopped at `--limit` while the filter's window may reach further back. */
function cutWarning(all: readonly DeadLetter[], limit: number, f: DeadLetterFilter): string | undefined {
  if (all.length < limit) return undefined;
  let oldest = Number.POSITIVE_INFINITY;
  for (const d of all) if (d.ts < oldest) oldest = d.ts;
  if (f.since !== undefined && oldest <= f.since) return undefined;
  return `note: only the latest ${limit} dead letters were read (the oldest from ${time(oldest)}): raise --limit to see further back`;
}

function describe(f: DeadLetterFilter): string {
  const parts = [
    f.service && `service ${f.service}`,
    f.origin && `origin ${f.origin}`,
    f.kind && `kind ${f.kind}`,
    f.since !== undefined && `since ${time(f.since)}`,
  ].filter(Boolean);
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`;
}

function time(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** Left-aligned columns; the last one (a reason) is not padded. Rows are written one by one. */
function table(head: string[], rows: string[][]): void {
  const widths = head.map((h) => h.length);
  for (const r of rows) for (let i = 0; i < r.length; i++) widths[i] = Math.max(widths[i]!, r[i]!.length);
  const line = (cells: string[]) =>
    `${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`;
  process.stdout.write(line(head));
  for (const r of rows) process.stdout.write(line(r));
}
