import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../../support/cli.ts';
import { krakenRecordedTrades } from '../../support/exchanges/fixtures.ts';
import { KrakenServer } from '../../support/exchanges/kraken.ts';
import { scratchDir } from '../../support/scratch.ts';
import { waitFor } from '../../support/wait.ts';

/**
 * The catalogue (src/core/errors.ts) and the README: `backfill` and `data fetch` stopped by SIGINT or SIGTERM end
 * with CC_ERR_INTERRUPTED, exit 130, their work resumable. Both listened for SIGINT alone: a SIGTERM (`kill`, a
 * container stop, `timeout`) killed them on the spot, exit 143 and no word, and a backfill killed between a page's
 * write and its state could leave the page in the output twice.
 */
describe('SIGTERM stops a command with an end as SIGINT does', () => {
  it('backfill --output: CC_ERR_INTERRUPTED, exit 130, the output as the state says; the rerun completes it once', async () => {
    const server = await new KrakenServer().listen();
    server.pageSize = 100;
    const trades = krakenRecordedTrades();
    server.record('BTC/USDT', trades);
    const dir = scratchDir('cc-backfill-sigterm-');
    const state = join(dir, 'state.json');
    const out = join(dir, 'trades.csv');
    const args = [
      'backfill',
      '--exchange',
      'kraken',
      '--pair',
      'BTC/USDT',
      '--since',
      '2025-11-10T17:00:00Z',
      '--until',
      '2025-11-11T01:00:00Z',
      '--base-url',
      server.restUrl,
      '--output',
      out,
      '--state',
      state,
    ];
    const fetched = () => {
      try {
        return (JSON.parse(readFileSync(state, 'utf8')) as { fetchedTrades: number }).fetchedTrades;
      } catch {
        return 0;
      }
    };
    try {
      // An hour between pages: after the first, the command waits, and the signal comes during that wait.
      const run = runCli(args, { CRYPTOCAST_KRAKEN_MIN_INTERVAL_MS: '3600000' });
      await waitFor('the first page', fetched, (n) => n > 0, { timeoutMs: 60_000, everyMs: 50 });
      run.child.kill('SIGTERM');
      const code = await run.exited;
      assert.equal(code, 130, run.stderr());
      assert.match(run.stderr(), /interrupted: 100 trades appended.*\[CC_ERR_INTERRUPTED\]/);
      const rerun = runCli(args, { CRYPTOCAST_KRAKEN_MIN_INTERVAL_MS: '0' });
      assert.equal(await rerun.exited, 0, rerun.stderr());
      const lines = readFileSync(out, 'utf8').trim().split('\n').slice(1);
      assert.equal(lines.length, trades.length);
      assert.equal(new Set(lines).size, trades.length, 'each trade once');
    } finally {
      await server.close();
    }
  });

  it('data fetch: CC_ERR_INTERRUPTED, exit 130, the part kept', async () => {
    const zip = randomBytes(200_000);
    const sum = createHash('sha256').update(zip).digest('hex');
    // 1,000 bytes every 100 ms: the download is in progress when the signal comes.
    const server = createServer((req, res) => {
      if ((req.url ?? '').endsWith('.CHECKSUM')) {
        res.end(`${sum}  BTCUSDT-1m-2022-05.zip\n`);
        return;
      }
      res.writeHead(200, { 'content-length': zip.length });
      let sent = 0;
      const timer = setInterval(() => {
        res.write(zip.subarray(sent, sent + 1000));
        sent += 1000;
        if (sent >= zip.length) {
          clearInterval(timer);
          res.end();
        }
      }, 100);
      req.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const dir = scratchDir('cc-fetch-sigterm-');
    const part = join(dir, 'spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2022-05.zip.part');
    const partBytes = () => {
      try {
        return readFileSync(part).length;
      } catch {
        return 0;
      }
    };
    try {
      const run = runCli([
        'data',
        'fetch',
        '--from',
        '2022-05',
        '--symbols',
        'BTCUSDT',
        '--base-url',
        `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        '--dir',
        dir,
      ]);
      await waitFor('the download to start', partBytes, (n) => n > 0, { timeoutMs: 60_000, everyMs: 50 });
      run.child.kill('SIGTERM');
      const code = await run.exited;
      assert.equal(code, 130, run.stderr());
      assert.match(run.stderr(), /interrupted.*\[CC_ERR_INTERRUPTED\]/);
      assert.ok(partBytes() > 0, 'the part is kept for the next run to continue');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
