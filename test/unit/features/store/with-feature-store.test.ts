import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ERR, fail } from '../../../../src/core/errors.ts';
import { TECHNICAL_SET } from '../../../../src/features/feature-writer.ts';
import { withFeatureStore } from '../../../../src/features/store/open.ts';
import { coded } from '../../../support/errors.ts';
import { scratchDir } from '../../../support/scratch.ts';

/** A port nothing listens on: one the kernel just handed out and that was closed again. */
const closedPort = () =>
  new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });

describe('withFeatureStore: a one-shot command’s store fails in one catalogued line', () => {
  it('a failure of the store’s own (not catalogued) is CC_ERR_STORE naming the store; a catalogued one is kept', async () => {
    const url = `duckdb:${join(scratchDir('cc-wfs-'), 's.duckdb')}`;
    await assert.rejects(
      withFeatureStore(url, async () => {
        throw new Error('IO Error: could not write');
      }),
      coded(ERR.STORE, new RegExp(`the feature store ${url} failed: IO Error: could not write`)),
    );
    await assert.rejects(
      withFeatureStore(url, async () => {
        throw fail(ERR.DATASET, 'too few rows');
      }),
      coded(ERR.DATASET),
    );
    // and the store works, and is closed after (a second open of the same file succeeds)
    const migrated = await withFeatureStore(url, async (s) => {
      await s.migrate(TECHNICAL_SET);
      return 1;
    });
    assert.equal(migrated, 1);
    assert.equal(await withFeatureStore(url, async () => 2), 2);
  });

  it('a PostgreSQL nobody listens on: CC_ERR_STORE after the bounded wait (a service waits for ever)', async () => {
    const port = await closedPort();
    const t0 = performance.now();
    await assert.rejects(
      withFeatureStore(`postgres://u@127.0.0.1:${port}/db`, async () => 1, 1_000),
      coded(ERR.STORE, new RegExp(`127\\.0\\.0\\.1:${port}/db did not answer within 1 s: .*ECONNREFUSED`)),
    );
    assert.ok(performance.now() - t0 >= 1_000, 'waited its time before giving up');
  });
});
