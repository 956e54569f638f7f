import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { MonitorService } from '../../src/monitoring/monitor-service.ts';
import type { ErrorsStore } from '../../src/monitoring/store/errors-store.ts';
import { openErrorsStore } from '../../src/monitoring/store/open.ts';
import { InProcessBus } from '../../src/runtime/in-process-bus.ts';
import { topics } from '../../src/schemas/topics.ts';
import { PG_CLOSE_WAIT_MS } from '../../src/stores/pg-pool.ts';
import { uniquePrefix } from '../support/kafka.ts';
import { candle, prediction } from '../support/monitor-minutes.ts';
import { ensurePostgres, PG_URL, testSchema } from '../support/postgres.ts';
import { FreezableProxy } from '../support/tcp-proxy.ts';
import { settlesWithin, waitFor } from '../support/wait.ts';

/**
 * The monitor's stop with a real PostgreSQL that goes silent mid-write (a proxy that stops forwarding: no reset, no
 * answer; the query timeout is PostgreSQL's default two minutes): the stop ends at its deadline and names what it did
 * not store, and the store's close then cuts the abandoned write's connection, instead of waiting for the write until
 * Kubernetes kills the pod.
 */
describe('the monitor stopping while its PostgreSQL is silent', () => {
  const schema = testSchema(uniquePrefix('monitor-stop-silent'));
  let proxy: FreezableProxy;
  let store: ErrorsStore;
  let closed = false;

  before(async () => {
    ensurePostgres();
    await schema.create();
    const pg = new URL(PG_URL);
    proxy = await FreezableProxy.start(Number(pg.port), pg.hostname);
    const url = new URL(schema.url);
    url.host = `127.0.0.1:${proxy.port}`;
    store = await openErrorsStore(url.toString());
  });
  after(async () => {
    proxy?.thaw();
    if (!closed) await store?.close();
    await proxy?.close();
    await schema.drop();
  });

  it('ends at its deadline with the verdicts of the silent write named, none of their predictions committed', async () => {
    const bus = new InProcessBus();
    const lines: { msg: string; verdicts?: number }[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const svc = new MonitorService(bus, store, { clock: 'event', logger, stopTimeoutMs: 2_000 });
    await svc.start();
    await bus.publish(
      topics.candles,
      Array.from({ length: 40 }, (_, i) => candle(i)),
    );
    await bus.publish(
      topics.predictions,
      Array.from({ length: 10 }, (_, i) => prediction(i)),
    );
    await waitFor(
      'the first verdicts stored',
      () => svc.stats.stored,
      (n) => n === 10,
      { timeoutMs: 30_000 },
    );
    proxy.freeze();
    await bus.publish(
      topics.predictions,
      Array.from({ length: 20 }, (_, i) => prediction(10 + i)),
    );
    const writes = (svc as unknown as { verdictWrites: { unwritten: number; backlog: number } })
      .verdictWrites;
    await waitFor(
      'a write in flight on the silent connection',
      () => ({ unwritten: writes.unwritten, backlog: writes.backlog }),
      (w) => w.unwritten === 20 && w.backlog === 0,
      { timeoutMs: 30_000, everyMs: 20 },
    );
    const began = performance.now();
    await settlesWithin(svc.stop(), 30_000, 'the stop');
    const took = performance.now() - began;
    assert.ok(took >= 1_900 && took < 15_000, `the stop ended at its deadline (${Math.round(took)} ms)`);
    const warning = lines.find((l) => l.msg.startsWith('stopped with'));
    assert.equal(warning?.verdicts, 20, 'the warning counts the verdicts of the silent write');
    assert.equal(svc.stats.stored, 10);
    assert.equal(await bus.groupLag(topics.predictions, 'monitor.predictions'), 20, 'none of them committed');
    await bus.close();
    // Then the command closes its store: the pool's end waited for the abandoned write until the query timeout (two
    // minutes), past the 45 s a stopping pod is given. Now it cuts that connection after PG_CLOSE_WAIT_MS.
    const closing = performance.now();
    await settlesWithin(store.close(), PG_CLOSE_WAIT_MS + 10_000, 'the store close');
    closed = true;
    const closeTook = performance.now() - closing;
    assert.ok(closeTook < PG_CLOSE_WAIT_MS + 5_000, `the close ended (${Math.round(closeTook)} ms)`);
  });
});
