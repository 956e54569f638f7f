import { loadStreamConfig, parseDuration } from '../../config/config.ts';
import { CryptocastError, ERR, fail, UsageError } from '../../core/errors.ts';
import { onStopSignal } from '../../core/stop-signals.ts';
import { KafkaBus } from '../../runtime/kafka/bus.ts';
import type { Topic } from '../../runtime/topic.ts';
import { MIN_RESTORE_RETENTION_MS, RESTORE_RETENTION_MS, topics } from '../../schemas/topics.ts';

/** Every topic cryptocast declares: the contract a deployment creates before the services start. */
export function declaredTopics(): Topic<unknown>[] {
  return Object.values(topics) as Topic<unknown>[];
}

/** `cryptocast topics list [--json]`: name, partitions and cleanup policy of every topic. */
export function listTopics(opts: { json?: boolean }): void {
  const rows = declaredTopics().map((t) => ({
    name: t.name,
    partitions: t.partitions,
    cleanupPolicy: t.compacted ? 'compact' : 'delete',
  }));
  if (opts.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  else for (const r of rows) process.stdout.write(`${r.name}\t${r.partitions}\t${r.cleanupPolicy}\n`);
}

/** The topics a restarted predictor reads back (`predictions`, `predictor.aci`): their retention must cover its warm-up. */
function restoreTopics(): Topic<unknown>[] {
  return declaredTopics().filter((t) => t.retentionMs !== undefined);
}

/**
 * `--retention`: a duration, refused (CC_ERR_USAGE) when shorter than the predictor's ACI warm-up reach, since it is
 * the retention of the topics the predictor restores from too (their oldest states would be gone before it reads).
 */
export function retentionFlag(text: string): number {
  let ms: number;
  try {
    ms = parseDuration(text, '--retention');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (ms < MIN_RESTORE_RETENTION_MS)
    throw new UsageError(
      `--retention ${text.trim()} is shorter than the predictor's warm-up reach: ${restoreTopics()
        .map((t) => t.name)
        .join(
          ' and ',
        )} need at least ${MIN_RESTORE_RETENTION_MS / 3_600_000}h (the ACI window, a week, and an hour)`,
      `leave it out for ${RESTORE_RETENTION_MS / 86_400_000}d on those topics and the broker's default on the others`,
    );
  return ms;
}

/**
 * `cryptocast topics create --bus kafka://… [--replication-factor N] [--retention D]`: creates every declared topic
 * that is missing (with CRYPTOCAST_TOPIC_PREFIX) and checks the partition count of those that exist; idempotent, so a
 * Kubernetes Job or an init step can run it on every install and upgrade. Retention: `--retention` on every topic it
 * creates; without, `predictions` and `predictor.aci` get RESTORE_RETENTION_MS (8 days: the predictor's warm-up reach
 * with margin) and the others the broker's default. Of the existing topics, those two are raised to that retention when
 * they keep less than the warm-up's reach (created before, with a broker's week).
 */
export async function createTopics(opts: {
  bus?: string;
  replicationFactor?: string;
  retention?: string;
  timeout?: string;
}): Promise<void> {
  const { bus } = loadStreamConfig({ bus: opts.bus });
  if (!bus.startsWith('kafka://'))
    throw new UsageError('topics create needs a Kafka bus: --bus kafka://host:port (or CRYPTOCAST_BUS)');
  const rf = opts.replicationFactor === undefined ? undefined : Number(opts.replicationFactor);
  if (rf !== undefined && (!Number.isInteger(rf) || rf < 1))
    throw new UsageError(`--replication-factor must be a positive integer, got "${opts.replicationFactor}"`);
  const retentionMs = opts.retention === undefined ? undefined : retentionFlag(opts.retention);
  const timeoutMs = parseDuration(opts.timeout ?? '60s');
  if (!(timeoutMs > 0)) throw new UsageError(`--timeout must be above zero, got "${opts.timeout}"`);
  const kafka = KafkaBus.connect(bus, {
    ...(rf === undefined ? {} : { replicationFactor: rf }),
    ...(retentionMs === undefined ? {} : { retentionMs }),
  });
  // A deploy step ends: a broker that does not answer within the timeout fails it (the bus gives up when closed).
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void kafka.close();
  }, timeoutMs);
  // A stop ends the wait too: as a Job's only process (PID 1) Node ignores a SIGTERM it has no handler for, so a Job
  // deleted or past its deadline while the broker was away waited out the grace period for its SIGKILL.
  let stopped = false;
  const off = onStopSignal(() => {
    stopped = true;
    void kafka.close();
  });
  let raised: { topic: string; fromMs: number }[] = [];
  try {
    try {
      await kafka.ensureTopics(declaredTopics());
      raised = await kafka.raiseRetention(
        restoreTopics(),
        MIN_RESTORE_RETENTION_MS,
        retentionMs ?? RESTORE_RETENTION_MS,
      );
    } catch (err) {
      if (stopped)
        throw fail(ERR.INTERRUPTED, 'interrupted: stopped before the topics were created', { cause: err });
      // Refused credentials, a TLS mismatch (KafkaBus: CC_ERR_BUS_AUTH, CC_ERR_BUS_TLS): already what to fix.
      if (err instanceof CryptocastError) throw err;
      // The client's AggregateError holds the broker's reasons (e.g. a replication factor above the broker count).
      const inner = (err as { errors?: unknown[] }).errors ?? [];
      const why = [err as Error, ...inner].map((e) => (e as Error).message).join('; ');
      throw fail(
        ERR.TOPICS,
        timedOut
          ? `the broker at ${bus} did not answer within ${opts.timeout ?? '60s'} (${why})`
          : `creating the topics on ${bus} failed: ${why}`,
        { cause: err },
      );
    }
    for (const t of declaredTopics())
      process.stdout.write(`${kafka.name(t)}\t${t.partitions} partitions\tready\n`);
    for (const r of raised)
      process.stdout.write(
        `${r.topic}\tretention.ms raised from ${r.fromMs} to ${retentionMs ?? RESTORE_RETENTION_MS} (the predictor's warm-up reach)\n`,
      );
  } finally {
    clearTimeout(timer);
    off();
    await kafka.close();
  }
}
