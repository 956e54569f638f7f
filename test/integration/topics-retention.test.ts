import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Admin, ConfigResourceTypes } from '@platformatic/kafka';
import { ERR } from '../../src/core/errors.ts';
import { ACI_WARM_UP_REACH_MS } from '../../src/inference/adaptive-conformal.ts';
import { MIN_RESTORE_RETENTION_MS, RESTORE_RETENTION_MS, topics } from '../../src/schemas/topics.ts';
import { exitedWithin, runCli } from '../support/cli.ts';
import { ensureKafka, KAFKA_URL, uniquePrefix } from '../support/kafka.ts';

/**
 * `cryptocast topics create` on a real broker (CRYPTOCAST_TEST_KAFKA), the retention read back from it. A restarted
 * predictor reads `predictor.aci` back as far as its warm-up reaches (the ACI window, a week, and an hour): created
 * with a broker's default week, the topic lost the oldest states it restores α_t from before they were read.
 */
const BROKER = KAFKA_URL.replace(/^kafka:\/\//, '').split(',')[0]!;
const WEEK_MS = 7 * 86_400_000;
const RESTORED = [topics.predictions.name, topics.predictorAci.name];

describe('topics create: the retention of the topics a restarted predictor reads back', () => {
  let admin: Admin;
  before(async () => {
    await ensureKafka();
    admin = new Admin({ clientId: 'topics-retention-test', bootstrapBrokers: [BROKER] });
  });
  after(async () => {
    await admin.close();
  });

  /** retention.ms of each topic of the namespace, as the broker reports it (its own setting, or the default). */
  const retention = async (prefix: string): Promise<Map<string, number>> => {
    const described = await admin.describeConfigs({
      resources: Object.values(topics).map((t) => ({
        resourceType: ConfigResourceTypes.TOPIC,
        resourceName: prefix + t.name,
        configurationKeys: ['retention.ms'],
      })),
    });
    return new Map(
      described.map((d) => [
        d.resourceName.slice(prefix.length),
        Number(d.configs.find((c) => c.name === 'retention.ms')?.value),
      ]),
    );
  };
  const create = async (prefix: string, ...flags: string[]) => {
    const run = runCli(['topics', 'create', '--bus', KAFKA_URL, ...flags], {
      CRYPTOCAST_TOPIC_PREFIX: prefix,
    });
    let out = '';
    run.child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const code = await exitedWithin(run, 120_000, 'topics create to end');
    return { code, out, err: run.stderr() };
  };

  it('creates predictions and predictor.aci with 8 days, past the warm-up reach; the others keep the broker default', async () => {
    assert.ok(RESTORE_RETENTION_MS > ACI_WARM_UP_REACH_MS, 'the retention covers the reach');
    const prefix = uniquePrefix('topics-retention');
    const { code, err } = await create(prefix);
    assert.equal(code, 0, err);
    const kept = await retention(prefix);
    for (const name of RESTORED) assert.equal(kept.get(name), RESTORE_RETENTION_MS, name);
    // The test broker's default (scripts/kafka.sh: Kafka's own, a week).
    assert.equal(kept.get(topics.trades.name), WEEK_MS);
  });

  it('--retention 10d: every topic created keeps 10 days', async () => {
    const prefix = uniquePrefix('topics-retention-flag');
    const { code, err } = await create(prefix, '--retention', '10d');
    assert.equal(code, 0, err);
    const kept = await retention(prefix);
    // A compacted topic (`trades.resume`) keeps the latest record per key, not a time window: no retention.ms given.
    for (const t of Object.values(topics).filter((t) => !t.compacted))
      assert.equal(kept.get(t.name), 10 * 86_400_000, t.name);
  });

  it('an upgrade: predictions and predictor.aci created before with the broker week are raised; the others left', async () => {
    const prefix = uniquePrefix('topics-retention-upgrade');
    for (const t of [topics.predictions, topics.predictorAci, topics.trades])
      await admin.createTopics({
        topics: [prefix + t.name],
        partitions: t.partitions,
        replicas: 1,
        configs: [{ name: 'retention.ms', value: String(WEEK_MS) }],
      });
    const { code, out, err } = await create(prefix);
    assert.equal(code, 0, err);
    const kept = await retention(prefix);
    for (const name of RESTORED) {
      assert.equal(kept.get(name), RESTORE_RETENTION_MS, name);
      assert.match(
        out,
        new RegExp(`${prefix + name}\\tretention.ms raised from ${WEEK_MS} to ${RESTORE_RETENTION_MS}`),
      );
    }
    assert.equal(kept.get(topics.trades.name), WEEK_MS, 'trades: as it was');
  });

  it('--retention shorter than the warm-up reach, or not a duration: CC_ERR_USAGE, nothing created', async () => {
    const prefix = uniquePrefix('topics-retention-short');
    const short = await create(prefix, '--retention', '7d');
    assert.equal(short.code, ERR.USAGE.exitCode, short.err);
    assert.match(
      short.err,
      new RegExp(
        `--retention 7d is shorter than the predictor's warm-up reach: predictions and predictor.aci need at least ${MIN_RESTORE_RETENTION_MS / 3_600_000}h .*\\[CC_ERR_USAGE\\]`,
      ),
    );
    for (const bad of ['7', 'a week', '-8d']) {
      const r = await create(prefix, '--retention', bad);
      assert.equal(r.code, ERR.USAGE.exitCode, `${bad}: ${r.err}`);
      assert.match(r.err, /--retention.*\[CC_ERR_USAGE\]/, bad);
    }
    const names = await admin.listTopics();
    assert.deepEqual(
      names.filter((n) => n.startsWith(prefix)),
      [],
    );
  });
});
