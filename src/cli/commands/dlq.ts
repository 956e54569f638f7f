import { loadStreamSetting, parseDuration } from '../../config/config.ts';
import { ERR, fail, UsageError } from '../../core/errors.ts';
import type { Bus } from '../../runtime/bus.ts';
import { connectBus } from '../../runtime/connect.ts';
import {
  type DeadLetterFilter,
  groupDeadLetters,
  reviveDeadLetter,
  selectDeadLetters,
} from '../../runtime/dead-letters.ts';
import type { DeadLetter } from '../../schemas/dlq.ts';
import { topics } from '../../schemas/topics.ts';
import { declaredTopics } from './topics.ts';

/**
 * `cryptocast dlq list|replay`: what the services dead-lettered and why, and sending back what should have passed once
 * its cause is fixed (a price guard too tight, a schema a producer now meets). Reads the latest `--limit` records of
 * the `dlq` topic on Kafka; the in-process bus of `run` keeps its dead letters in memory only.
 */
interface Flags {
  bus?: string;
  service?: string;
  origin?: string;
  kind?: string;
  since?: string;
  limit?: string;
  json?: boolean;
  records?: boolean;
  dryRun?: boolean;
}

/** Letters published at once by a replay: small produce requests, progress visible on a large replay. */
const REPLAY_BATCH = 500;

export async function listCommand(opts: Flags): Promise<void> {
  const { filter, limit } = parseFlags(opts);
  await withDeadLetters(opts, limit, async (all) => {
    const letters = selectDeadLetters(all, filter);
    const groups = groupDeadLetters(letters);
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ read: all.length, limit, matching: letters.length, groups, ...(opts.records ? { records: letters } : {}) }, null, 2)}\n`,
      );
      return;
    }
    if (letters.length === 0) {
      process.stdout.write(`no dead letters${describe(filter)} among the latest ${all.length} on dlq\n`);
      return;
    }
    process.stdout.write(
      `${letters.length} dead letters${describe(filter)} among the latest ${all.length} on dlq (--limit ${limit})\n`,
    );
    const rows = groups.map((g) => [
      String(g.count),
      g.service,
      g.origin,
      g.kind,
      time(g.first),
      time(g.last),
      String(g.reasons),
      g.latestReason,
    ]);
    table(['count', 'service', 'origin', 'kind', 'first', 'last', 'reasons', 'latest reason'], rows);
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
  const { filter, limit } = parseFlags(opts);
  if (filter.origin === undefined)
    throw new UsageError(
      'dlq replay needs --origin TOPIC: the topic the dead letters go back to (e.g. trades)',
    );
  const target = declaredTopics().find((t) => t.name === filter.origin);
  if (target === undefined || target === topics.dlq)
    throw new UsageError(
      `--origin ${filter.origin} is not a topic dead letters can go back to: one of ${declaredTopics()
        .filter((t) => t !== topics.dlq)
        .map((t) => t.name)
        .join(', ')}`,
    );
  await withDeadLetters(opts, limit, async (all, bus) => {
    const letters = selectDeadLetters(all, filter);
    const values: unknown[] = [];
    const refused = new Map<string, number>();
    for (const d of letters) {
      const r = reviveDeadLetter(d, declaredTopics());
      if (r.ok) values.push(r.value);
      else refused.set(r.reason, (refused.get(r.reason) ?? 0) + 1);
    }
    if (!opts.dryRun)
      for (let i = 0; i < values.length; i += REPLAY_BATCH)
        await bus.publish(target, values.slice(i, i + REPLAY_BATCH));
    const stillInvalid = [...refused]
      .sort((a, b) => b[1] - a[1])
      .map(([reason, count]) => ({ reason, count }));
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ read: all.length, matching: letters.length, replayable: values.length, published: opts.dryRun ? 0 : values.length, dryRun: Boolean(opts.dryRun), origin: target.name, notReplayable: stillInvalid }, null, 2)}\n`,
      );
      return;
    }
    process.stdout.write(
      `${letters.length} dead letters${describe(filter)} among the latest ${all.length} on dlq: ${values.length} ${
        opts.dryRun ? 'would be published' : 'published'
      } to ${target.name}, ${letters.length - values.length} not replayable\n`,
    );
    for (const { reason, count } of stillInvalid.slice(0, 10))
      process.stdout.write(`  ${String(count).padStart(6)}  ${reason}\n`);
    if (stillInvalid.length > 10) process.stdout.write(`  … and ${stillInvalid.length - 10} other reasons\n`);
    if (!opts.dryRun && values.length > 0)
      process.stdout.write(
        'the dead letters stay on dlq (a replay copies, it does not move): narrow the next replay with --since\n',
      );
  });
}

function parseFlags(opts: Flags): { filter: DeadLetterFilter; limit: number } {
  const limit = Number(opts.limit ?? '1000');
  if (!Number.isInteger(limit) || limit < 1)
    throw new UsageError(`--limit must be a positive integer, got "${opts.limit}"`);
  const filter: DeadLetterFilter = {};
  if (opts.service !== undefined) filter.service = opts.service;
  if (opts.origin !== undefined) filter.origin = opts.origin;
  if (opts.kind !== undefined) filter.kind = opts.kind;
  if (opts.since !== undefined) {
    const ms = parseDuration(opts.since, '--since');
    if (!(ms > 0)) throw new UsageError(`--since must be above zero, got "${opts.since}"`);
    filter.since = Date.now() - ms;
  }
  return { filter, limit };
}

async function withDeadLetters(
  opts: Flags,
  limit: number,
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
  try {
    const tail = await bus.readTail(topics.dlq, limit);
    await work(
      tail.map((r) => r.value),
      bus,
    );
  } finally {
    await bus.close();
  }
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

/** Left-aligned columns; the last one (a reason) is not padded. */
function table(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    `${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`;
  process.stdout.write(line(head));
  for (const r of rows) process.stdout.write(line(r));
}
