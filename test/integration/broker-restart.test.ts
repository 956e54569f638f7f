import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMarketDataPipeline } from '../../src/app/pipeline.ts';
import { candleCsvRow } from '../../src/candles/csv.ts';
import { ReplaySource } from '../../src/ingestion/replay.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import { KafkaBus } from '../../src/runtime/kafka-bus.ts';
import { topics } from '../../src/runtime/topic.ts';
import type { Candle } from '../../src/schemas/candle.ts';
import { BINANCE_CAPTURE } from '../support/data.ts';

/**
 * A broker restart in the middle of a replay loses nothing: the trades service retries its publishes until
 * the broker is back, the candle service reconnects and resumes from its committed offsets, and the final
 * candles equal an uninterrupted run. Uses its own broker (own port and data dir) so that restarting it does
 * not disturb other tests.
 */
const ROOT = join(import.meta.dirname, '..', '..');
/** Free ports for the broker of its own (a fixed one may be taken by another checkout's broker on this machine). */
const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
let env: NodeJS.ProcessEnv = {};
let URL = '';
const kafka = (cmd: string) =>
  execFileSync('bash', [join(ROOT, 'scripts', 'kafka.sh'), cmd], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
const csv = (cs: readonly Candle[]) =>
  [...cs]
    .sort((a, b) => a.pair.localeCompare(b.pair) || a.windowStart - b.windowStart)
    .map(candleCsvRow)
    .join('\n');

describe('broker restart mid-replay', () => {
  const children: ChildProcess[] = [];
  before(async () => {
    const [port, controller] = [await freePort(), await freePort()];
    env = {
      ...process.env,
      KAFKA_PORT: String(port),
      KAFKA_CONTROLLER_PORT: String(controller),
      KAFKA_DATA_DIR: join(ROOT, '.data', `kafka-restart-test-${process.pid}`),
      KAFKA_HEAP: '512m',
    };
    URL = `kafka://127.0.0.1:${port}`;
    kafka('reset');
    kafka('start');
  });
  after(() => {
    for (const c of children) c.kill('SIGKILL');
    kafka('reset'); // stop, and remove this run's data dir
  });

  it('loses no accepted trade and gives the uninterrupted candles', async () => {
    const mem = new InProcessBus();
    const ref = await startMarketDataPipeline({
      bus: mem,
      sources: [new ReplaySource({ files: [BINANCE_CAPTURE], speed: 'max' })],
      config: { interval: '1m', graceMs: 5_000, latePolicy: 'dlq' },
    });
    await ref.finished;
    const expected = (await mem.readTail(topics.candles, 100_000)).map((r) => r.value);
    await ref.stop();

    const spawnService = (args: string[]) => {
      const c = spawn(join(ROOT, 'bin', 'cryptocast'), ['service', ...args, '--bus', URL], {
        env: { ...process.env, CRYPTOCAST_LOG_LEVEL: 'error', CRYPTOCAST_KAFKA_SESSION_TIMEOUT_MS: '6000' },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      children.push(c);
      return c;
    };
    const bus = KafkaBus.connect(URL);
    await bus.ensureTopics([topics.trades, topics.candles, topics.dlq]);
    await bus.close();
    spawnService(['candles']);
    const trades = spawnService(['trades', '--source', 'replay', '--data', BINANCE_CAPTURE, '--speed', '40']);
    const tradesExit = new Promise<number | null>((r) => trades.once('exit', (code) => r(code)));
    await sleep(5_000);
    kafka('stop'); // the broker goes away for a few seconds, mid-replay
    await sleep(3_000);
    kafka('start');
    assert.equal(await tradesExit, 0, 'the trades service finished its replay');

    const check = KafkaBus.connect(URL);
    try {
      const deadline = Date.now() + 120_000;
      let got: Candle[] = [];
      while (Date.now() < deadline) {
        got = (await check.readTail(topics.candles, 100_000)).map((r) => r.value);
        if (got.length >= expected.length) break;
        await sleep(500);
      }
      await sleep(1_000);
      got = (await check.readTail(topics.candles, 100_000)).map((r) => r.value);
      assert.equal(csv(got), csv(expected));
    } finally {
      await check.close();
    }
  });
});
