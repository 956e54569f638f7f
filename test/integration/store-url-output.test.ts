import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exitedWithin, runCli } from '../support/cli.ts';
import { SHARED_DATA } from '../support/data.ts';
import { tempDirs } from '../support/embedded-run.ts';
import { testSchema } from '../support/postgres.ts';

const dir = tempDirs();
const PASSWORD = 'St9-pass-of-test';

/**
 * A store URL given as documented, from the environment with its password (`CRYPTOCAST_STORE=postgres://u:PASSWORD@…`),
 * was printed as it was in what `run` and `features` write themselves, past the logger and its redaction: the summary
 * on stderr ("feature store postgres://u:PASSWORD@…: BTC/USD history up to …"), the `done` JSON event on stdout, and
 * features' closing line — a terminal, a CI log, a file the JSON goes to. They now name the store without its password.
 */
describe('store URLs in command output', () => {
  const schema = testSchema(`cc_store_url_output_${process.pid}`);
  let url = '';
  before(async () => {
    await schema.create();
    const u = new URL(schema.url);
    u.password = PASSWORD; // the local test server trusts its clients: the password is carried, never checked
    url = u.toString();
  });
  after(() => schema.drop());

  it('run: the summary and the done event name the store, without its password', async () => {
    const run = runCli(['run', '--json', '--no-news', '--port', '0'], {
      CRYPTOCAST_STORE: url,
      CRYPTOCAST_REGISTRY: dir('cc-store-url-registry-'),
    });
    assert.equal(await exitedWithin(run, 180_000, 'the run to end'), 0, run.stderr());
    const out = `${JSON.stringify(run.events)}\n${run.stderr()}`;
    assert.ok(!out.includes(PASSWORD), out);
    assert.match(run.stderr(), /feature store postgres:\/\/\S*@127\.0\.0\.1:\d+\/\S*: \S+ history up to/);
    assert.match(
      String(run.events.find((e) => e.event === 'done')?.store),
      /^postgres:\/\/\S*@127\.0\.0\.1:\d+\//,
    );
  });

  it('features --candles with CRYPTOCAST_STORE_BACKFILL: the closing line names the store, without its password', async () => {
    const zip = join(
      SHARED_DATA,
      'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02/BTCUSDT/BTCUSDT-1m-2022-01-01.zip',
    );
    const run = runCli(
      ['features', '--candles', zip, '--output', join(dir('cc-store-url-features-'), 'f.csv')],
      {
        CRYPTOCAST_STORE_BACKFILL: url,
      },
    );
    assert.equal(await exitedWithin(run, 180_000, 'features to end'), 0, run.stderr());
    assert.ok(!run.stderr().includes(PASSWORD), run.stderr());
    assert.match(run.stderr(), /feature rows .* into \S+ and postgres:\/\/\S*@127\.0\.0\.1:\d+\//);
  });
});
