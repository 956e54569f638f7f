import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PostgresFeatureStore } from '../../src/features/store/postgres.ts';
import type { FeatureSetDefinition } from '../../src/features/store/store.ts';
import type { FeatureVectorRecord } from '../../src/schemas/feature.ts';
import { uniquePrefix } from '../support/kafka.ts';
import { PG_URL, testSchema } from '../support/postgres.ts';
import { FreezableProxy } from '../support/tcp-proxy.ts';
import { settlesWithin, waitFor } from '../support/wait.ts';

/**
 * A real PostgreSQL behind a proxy that goes silent mid-session (a network partition: no reset, no answer). A store's
 * reads and writes then fail with a timeout instead of hanging their service for ever, and once the network is back
 * the same store serves again without a restart: nothing written before the silence is lost, and a write retried
 * after it lands once.
 */
describe('PostgreSQL that goes silent on an open connection', () => {
  const schema = testSchema(uniquePrefix('pg-silence'));
  const set: FeatureSetDefinition = { name: 'silence', version: 1, columns: ['a'], source: 'test' };
  const T = Date.UTC(2025, 0, 7);
  const vec = (windowEnd: number, a: number): FeatureVectorRecord => ({
    v: 1,
    featureSet: set.name,
    featureSetVersion: set.version,
    exchange: 'test',
    pair: 'BTC/USDT',
    windowStart: windowEnd - 60_000,
    windowEnd,
    close: 100,
    ready: true,
    values: [a],
  });
  let proxy: FreezableProxy;
  let store: PostgresFeatureStore;

  before(async () => {
    await schema.create();
    const pg = new URL(PG_URL);
    proxy = await FreezableProxy.start(Number(pg.port), pg.hostname);
    const url = new URL(schema.url);
    url.host = `127.0.0.1:${proxy.port}`;
    url.searchParams.set('query_timeout', '1500');
    store = await PostgresFeatureStore.open(url.toString());
  });
  after(async () => {
    await store?.close();
    await proxy?.close();
    await schema.drop();
  });

  it('a read and a write fail with a timeout while it is silent, and the store serves again once it answers', async () => {
    await store.write(set, [vec(T, 1)]);
    assert.equal((await store.online(set, 'BTC/USDT', T))?.vector.values[0], 1);

    proxy.freeze();
    await assert.rejects(
      settlesWithin(store.online(set, 'BTC/USDT', T), 15_000, 'the read to give up'),
      /Query read timeout/,
    );
    await assert.rejects(
      // The read's connection was thrown away: the write's new one times out connecting (10 s), or reading.
      settlesWithin(store.write(set, [vec(T + 60_000, 2)]), 30_000, 'the write to give up'),
      /Query read timeout|connection timeout/,
    );
    proxy.thaw();

    // The caller retries, as a service's handler does after a failed batch: it lands, on a connection that answers.
    await waitFor(
      'the write to go through once the network is back',
      () =>
        store.write(set, [vec(T + 60_000, 2)]).then(
          () => true,
          () => false,
        ),
      (ok) => ok,
      { timeoutMs: 30_000 },
    );
    assert.deepEqual(
      (await store.history(set, 'BTC/USDT', T, T + 120_000)).map((v) => [v.windowEnd, v.values[0]]),
      [
        [T, 1],
        [T + 60_000, 2],
      ],
    );
    assert.equal((await store.online(set, 'BTC/USDT', T + 60_000))?.vector.values[0], 2);
  });
});
