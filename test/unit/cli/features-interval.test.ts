import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { features } from '../../../src/cli/commands/features.ts';
import { ERR } from '../../../src/core/errors.ts';
import { coded } from '../../support/errors.ts';
import { scratchDir } from '../../support/scratch.ts';

/**
 * The features are defined on 1-minute candles (ret_5 is the close 5 minutes ago, the windows are 15 and 60 minutes).
 * `cryptocast candles --interval 5m` output given to `features` made a CSV of rows never ready, exit 0, the summary
 * calling every candle a gap ("11 gaps restarted the warm-up" for 12 candles). Each candle is now refused with why,
 * and a file of them is CC_ERR_INPUT with no output left.
 */
it('features on 5-minute candles (cryptocast candles --interval 5m): refused, not a CSV of warm-up rows', async () => {
  const dir = scratchDir('cc-features-5m-');
  const candles = join(dir, 'c5.csv');
  const start = Date.UTC(2019, 6, 1);
  let text = 'pair,windowStart,windowEnd,open,high,low,close,volume,trades,vwap,filled\n';
  for (let i = 0; i < 100; i++) {
    const s = start + i * 300_000;
    text += `BTC/USD,${s},${s + 300_000},100,101,99,100,2,3,100,false\n`;
  }
  writeFileSync(candles, text);
  const output = join(dir, 'f.csv');
  await assert.rejects(
    features({ candles, output, exchange: 'file' }),
    coded(ERR.INPUT, /no feature rows .*all 100 candles rejected/),
  );
  assert.equal(existsSync(output), false);
});
