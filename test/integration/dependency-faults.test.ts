import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { startMarketDataPipeline } from '../../src/app/pipeline.ts';
import { candleCsvRow } from '../../src/candles/csv.ts';
import { TECHNICAL_SET } from '../../src/features/feature-writer.ts';
import { PostgresFeatureStore } from '../../src/features/store/postgres.ts';
import { ReplaySource } from '../../src/ingestion/replay.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import { topics } from '../../src/schemas/topics.ts';
import { BINANCE_CAPTURE } from '../support/data.ts';
import { freePort } from '../support/ports.ts';
import { waitFor } from '../support/wait.ts';

/**
 * Services survive their dependencies: started before their broker or database exists, or with the broker going
 * away while they start and again mid-stream, they wait (saying so on /ready), resume, and the final data equals an
 * uninterrupted run. Each case uses a broker (and a PostgreSQL cluster) of its own on free ports, so that stopping
 * it disturbs nothing else. Every wait is on a condition, with a deadline.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const csv = (cs: readonly Candle[]) =>
  [...cs]
    .sort((a, b) => a.pair.localeCompare(b.pair) || a.windowStart - b.windowStart)
    .map(candleCsvRow)
    .join('\n');

class Broker {
  readonly port: number;
  readonly env: NodeJS.ProcessEnv;
  constructor(port: number, controller: number) {
    this.port = port;
    this.env = {
      ...process.env,
      KAFKA_PORT: String(port),
      KAFKA_CONTROLLER_PORT: String(controller),
      KAFKA_DATA_DIR: join(ROOT, '.data', `kafka-faults-${process.pid}-${port}`),
      KAFKA_HEAP: '512m',
    };
  }
  get url() {
    return `kafka://127.0.0.1:${this.port}`;
  }
  run(cmd: 'start' | 'stop' | 'reset') {
    execFileSync('bash', [join(ROOT, 'scripts', 'kafka.sh'), cmd], {
      env: this.env,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
}

/** `cryptocast service …` with a metrics port (its /ready tells whether it waits for a dependency). */
function service(children: ChildProcess[], args: string[], metricsPort: number, env: NodeJS.ProcessEnv = {}) {
  const c = spawn(
    join(ROOT, 'bin', 'cryptocast'),
    ['service', ...args, '--metrics-port', String(metricsPort)],
    {
      env: {
        ...process.env,
        CRYPTOCAST_LOG_LEVEL: 'warn',
        CRYPTOCAST_KAFKA_SESSION_TIMEOUT_MS: '6000',
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  c.stderr!.on('data', (d) => {
    err += d;
  });
  children.push(c);
  const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
  return {
    c,
    exited,
    stderr: () => err,
    ready: async () => {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/ready`);
      return { status: res.status, body: (await res.json()) as { status: string; reason?: string } };
    },
  };
}

async function referenceCandles(): Promise<Candle[]> {
  const mem = new InProcessBus();
  const ref = await startMarketDataPipeline({
    bus: mem,
    sources: [new ReplaySource({ files: [BINANCE_CAPTURE], speed: 'max' })],
    config: { interval: '1m', graceMs: 5_000, latePolicy: 'dlq' },
  });
  await ref.finished;
  const out = (await mem.readTail(topics.candles, 100_000)).map((r) => r.value);
  await ref.stop();
  return out;
}

async function candlesOn(url: string, expected: number): Promise<Candle[]> {
  const check = KafkaBus.connect(url);
  try {
    return await waitFor(
      `${expected} candles on ${url}`,
      async () => (await check.readTail(topics.candles, 100_000)).map((r) => r.value),
      (got) => got.length >= expected,
      { timeoutMs: 180_000, everyMs: 500 },
    );
  } finally {
    await check.close();
  }
}

describe('services survive their dependencies', () => {
  const children: ChildProcess[] = [];
  const brokers: Broker[] = [];
  let expected: Candle[] = [];
  before(async () => {
    expected = await referenceCandles();
  });
  after(() => {
    for (const c of children) c.kill('SIGKILL');
    for (const b of brokers) {
      b.run('reset');
      // `reset` keeps the lock file beside the data dir (scripts/kafka.sh): a broker per run would leave one each.
      rmSync(`${b.env.KAFKA_DATA_DIR}.lock`, { force: true });
    }
  });
  const newBroker = async () => {
    const b = new Broker(await freePort(), await freePort());
    brokers.push(b);
    return b;
  };

  it('started before their broker exists: they wait, say so on /ready, and give the uninterrupted candles', async () => {
    const broker = await newBroker();
    const candles = service(children, ['candles', '--bus', broker.url], await freePort(), {
      CRYPTOCAST_LOG_LEVEL: 'info',
    });
    const trades = service(
      children,
      ['trades', '--bus', broker.url, '--source', 'replay', '--data', BINANCE_CAPTURE, '--speed', 'max'],
      await freePort(),
    );
    const waiting = await waitFor(
      'the candle service to report the missing broker',
      () => candles.ready(),
      (r) => r.status === 503 && /kafka/.test(r.body.reason ?? ''),
    );
    assert.match(waiting.body.reason!, /kafka/);
    assert.equal(candles.c.exitCode, null, 'still running');
    broker.run('start');
    await waitFor(
      'the candle service to be ready',
      () => candles.ready(),
      (r) => r.status === 200,
    );
    assert.equal(await trades.exited, 0, trades.stderr());
    assert.equal(csv(await candlesOn(broker.url, expected.length)), csv(expected));
    assert.match(candles.stderr(), /kafka is unavailable: waiting for it/);
    assert.match(candles.stderr(), /kafka is available again/);
  });

  it('the broker stops while they start and again mid-replay: nothing lost, the uninterrupted candles', async () => {
    const broker = await newBroker();
    broker.run('start');
    const candles = service(children, ['candles', '--bus', broker.url], await freePort());
    // Stopped as soon as the service is up but before it is ready (joining, creating topics).
    await waitFor(
      'the candle service to answer its probes',
      () => candles.ready().catch(() => undefined),
      (r) => r !== undefined,
    );
    broker.run('stop');
    const trades = service(
      children,
      // About 55 s of replay: after the outage the candle service's retry may wait up to 15 s, then rejoin its group,
      // before its first candles; at --speed 40 (16 s) a loaded machine could finish the replay first.
      ['trades', '--bus', broker.url, '--source', 'replay', '--data', BINANCE_CAPTURE, '--speed', '12'],
      await freePort(),
    );
    await waitFor(
      'both services to report the missing broker',
      async () => [await candles.ready(), await trades.ready()],
      (rs) => rs.every((r) => r.status === 503),
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}\ncandles (exit ${candles.c.exitCode}): ${candles.stderr().slice(-1500)}\ntrades (exit ${trades.c.exitCode}): ${trades.stderr().slice(-1500)}`,
      );
    });
    broker.run('start');
    // Mid-replay: candles are flowing and the replay is not over (asserted), then the broker goes away again.
    const check = KafkaBus.connect(broker.url);
    await waitFor(
      'the first candles',
      async () => (await check.readTail(topics.candles, 10)).length,
      (n) => n > 0,
      { timeoutMs: 120_000 },
    );
    await check.close();
    assert.equal(trades.c.exitCode, null, 'the replay is still running when the broker stops');
    broker.run('stop');
    await waitFor(
      'the candle service to notice',
      () => candles.ready(),
      (r) => r.status === 503,
      { timeoutMs: 120_000 },
    );
    broker.run('start');
    assert.equal(await trades.exited, 0, `the trades service finished its replay: ${trades.stderr()}`);
    assert.equal(csv(await candlesOn(broker.url, expected.length)), csv(expected));
    assert.equal(candles.c.exitCode, null, 'the candle service never exited');
  });

  it('a subscription says it has not read to the end while its broker is away (the monitor then times nothing out)', async () => {
    const broker = await newBroker();
    broker.run('start');
    // Its fetch failures are expected here: logged at error level only (the warnings would flood the test output).
    const bus = KafkaBus.connect(broker.url, { sessionTimeoutMs: 6_000, logger: pino({ level: 'error' }) });
    try {
      await bus.publish(topics.candles, expected.slice(0, 20));
      let handled = 0;
      const sub = await bus.subscribe<Candle>({
        topic: topics.candles,
        group: 'reads-to-end',
        service: 'test',
        handle: (b) => {
          handled += b.records.length;
          return undefined;
        },
      });
      await waitFor(
        'every candle read',
        () => handled === 20 && sub.readToEnd(),
        (ok) => ok,
        { timeoutMs: 60_000 },
      );
      broker.run('stop');
      await waitFor(
        'not read to the end: the broker is away',
        () => sub.readToEnd(),
        (ok) => !ok,
        {
          timeoutMs: 120_000,
        },
      );
      broker.run('start');
      await waitFor(
        'read to the end again once it is back',
        () => sub.readToEnd(),
        (ok) => ok,
        {
          timeoutMs: 180_000,
        },
      );
      assert.equal(handled, 20, 'nothing read twice or lost');
      await sub.stop();
    } finally {
      await bus.close();
    }
  });

  it('a feature-writer started before its PostgreSQL exists waits for it, then stores every vector', async () => {
    const broker = await newBroker();
    broker.run('start');
    const pgPort = await freePort();
    const pgEnv = { ...process.env, PG_PORT: String(pgPort), PG_CLUSTER: `faults${process.pid}` };
    const storeUrl = `postgres://cryptocast@127.0.0.1:${pgPort}/cryptocast`;
    try {
      service(children, ['candles', '--bus', broker.url], await freePort());
      service(children, ['features', '--bus', broker.url], await freePort());
      const writer = service(
        children,
        ['feature-writer', '--bus', broker.url, '--store', storeUrl],
        await freePort(),
      );
      await waitFor(
        'the feature-writer to report the missing database',
        () => writer.ready(),
        (r) => r.status === 503 && /postgresql/.test(r.body.reason ?? ''),
        { timeoutMs: 120_000 },
      );
      const trades = service(
        children,
        ['trades', '--bus', broker.url, '--source', 'replay', '--data', BINANCE_CAPTURE, '--speed', 'max'],
        await freePort(),
      );
      assert.equal(await trades.exited, 0);
      execFileSync('bash', [join(ROOT, 'scripts', 'postgres.sh'), 'start'], {
        env: pgEnv,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      await waitFor(
        'the feature-writer to be ready',
        () => writer.ready(),
        (r) => r.status === 200,
        { timeoutMs: 120_000 },
      ).catch((err) => {
        throw new Error(
          `${(err as Error).message}; exit ${writer.c.exitCode}; its log:\n${writer.stderr().slice(-3000)}`,
        );
      });
      const store = await PostgresFeatureStore.open(storeUrl);
      try {
        const rows = await waitFor(
          'every feature vector stored',
          () => store.count(TECHNICAL_SET),
          (n) => n >= 24,
          { timeoutMs: 120_000 },
        );
        assert.equal(rows, 24, 'the capture makes 24 candles, hence 24 vectors');
      } finally {
        await store.close();
      }
      assert.equal(writer.c.exitCode, null);
    } finally {
      execFileSync('bash', [join(ROOT, 'scripts', 'postgres.sh'), 'drop'], {
        env: pgEnv,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
    }
  });
});
