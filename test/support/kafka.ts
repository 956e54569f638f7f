import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Admin } from '@platformatic/kafka';
import type { Bus } from '../../src/runtime/bus.ts';
import type { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { Topic } from '../../src/runtime/topic.ts';
import { waitFor } from './wait.ts';

export const KAFKA_URL = process.env.CRYPTOCAST_TEST_KAFKA ?? 'kafka://127.0.0.1:9092';
const ROOT = join(import.meta.dirname, '..', '..');

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Makes sure the project's real Kafka broker is up (scripts/kafka.sh start is idempotent). */
export async function ensureKafka(): Promise<void> {
  const port = Number(/:(\d+)/.exec(KAFKA_URL)?.[1] ?? 9092);
  if (await portOpen(port)) return;
  execFileSync('bash', [join(ROOT, 'scripts', 'kafka.sh'), 'start'], { stdio: 'inherit' });
}

/**
 * The environment of a `cryptocast` service process under test on Kafka: its own topics (`prefix`), warnings only, a
 * fault to inject (src/core/faults.ts; none when empty), and a 6-second group session, so that the partitions of a
 * member killed by the test move to its successor within seconds rather than the default 45.
 */
export function serviceEnv(prefix: string, fault = ''): NodeJS.ProcessEnv {
  return {
    ...process.env,
    CRYPTOCAST_TOPIC_PREFIX: prefix,
    CRYPTOCAST_LOG_LEVEL: 'warn',
    CRYPTOCAST_FAULT: fault,
    CRYPTOCAST_KAFKA_SESSION_TIMEOUT_MS: '6000',
  };
}

/** A fresh topic/group namespace so that tests never see each other's (or an earlier run's) data. */
export function uniquePrefix(name: string): string {
  return `test.${name}.${process.pid}.${Date.now().toString(36)}.`;
}

/**
 * Starts `cryptocast service …` processes on the test broker, in the topic namespace `prefix`; every process is
 * added to `children`, for the test to kill at the end.
 */
export function serviceLauncher(
  prefix: string,
  children: ChildProcess[],
  extraEnv: NodeJS.ProcessEnv = {},
): (args: string[], env?: NodeJS.ProcessEnv) => ChildProcess {
  const base = {
    ...process.env,
    ...extraEnv,
    CRYPTOCAST_TOPIC_PREFIX: prefix,
    CRYPTOCAST_LOG_LEVEL: 'warn',
    CRYPTOCAST_BUS: KAFKA_URL,
  };
  return (args, env = {}) => {
    const c = spawn(join(ROOT, 'bin', 'cryptocast'), ['service', ...args], {
      env: { ...base, ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(c);
    return c;
  };
}

/**
 * Waits until consumer group `group` (in the bus's namespace) has committed every record of `topic` that is there
 * now. The pipeline's services publish a batch's output before they commit its input, so from then on everything
 * they will ever publish for those records is on their output topic: a test can assert "exactly once" on it
 * without a blind delay. Call it once the input is complete (its producer has finished).
 */
export async function waitForGroupCommitted(
  bus: KafkaBus,
  topic: Topic<unknown>,
  group: string,
  timeoutMs = 120_000,
): Promise<void> {
  const name = bus.name(topic);
  const { latest } = await bus.offsets(name);
  const admin = new Admin({ clientId: 'test-group-offsets', bootstrapBrokers: bus.brokers });
  try {
    await waitFor(
      `group ${group} to commit all of ${topic.name} (end offsets ${latest.join(', ')})`,
      async () => {
        const [g] = await admin.listConsumerGroupOffsets({ groups: [bus.prefix + group] });
        const committed = new Map<number, bigint>();
        for (const t of g?.topics ?? [])
          if (t.name === name)
            for (const p of t.partitions) committed.set(p.partitionIndex, p.committedOffset);
        return latest.map((end, p) => (committed.get(p) ?? -1n) >= end || end === 0n);
      },
      (done) => done.every(Boolean),
      { timeoutMs, everyMs: 250 },
    );
  } finally {
    await admin.close();
  }
}

/**
 * `bus` (the real broker), except that a subscription joins its group only once the view under test has made `reads`
 * whole-topic or tail reads and `afterReads` has run: a group whose partitions are assigned after the view read the
 * topic (a late join, a first join that assigned nothing, a rebalance), with records published in between.
 */
export function lateAssignment(bus: Bus, reads: number, afterReads: () => Promise<void>): Bus {
  let done = 0;
  let release!: () => void;
  const released = new Promise<void>((r) => {
    release = r;
  });
  const read = async <R>(p: Promise<R>): Promise<R> => {
    const out = await p;
    if (++done === reads) {
      await afterReads();
      release();
    }
    return out;
  };
  return {
    kind: bus.kind,
    ensureTopics: (t) => bus.ensureTopics(t),
    publish: (t, v) => bus.publish(t, v),
    groupLag: (t, g, o) => bus.groupLag(t, g, o),
    close: () => bus.close(),
    readTail: (t, n, o) => read(bus.readTail(t, n, o)),
    readPages: (t, onPage, o) => read(bus.readPages(t, onPage, o)),
    async subscribe(options) {
      const real = released.then(() => bus.subscribe(options));
      return {
        stop: async () => (await real).stop(),
        lag: () => 0,
        caughtUp: async () => (await real).caughtUp(),
        readToEnd: () => false,
      };
    },
  };
}
