import { n } from '../../app/progress.ts';
import { readOhlcv } from '../../candles/ohlcv-files.ts';
import { UsageError } from '../../core/errors.ts';
import { FeatureCsvWriter } from '../../features/csv.ts';
import { check, TechnicalFeatures } from '../../features/technical.ts';

/**
 * `cryptocast features`: candles (any OHLCV CSV, Binance kline files, or `cryptocast candles` output) → one feature
 * row per candle, with the very code the live feature service runs.
 */
export async function features(opts: { candles: string; output: string; pair?: string }): Promise<void> {
  const engine = new TechnicalFeatures();
  const writer = new FeatureCsvWriter(opts.output);
  let rejects = 0;
  let ready = 0;
  const reject = (where: string, reason: string) => {
    rejects++;
    if (rejects <= 10) process.stderr.write(`rejected ${where}: ${reason}\n`);
  };
  const started = performance.now();
  try {
    for await (const batch of readOhlcv(opts.candles, { pair: opts.pair })) {
      for (const r of batch.rejects) reject(`${r.file} line ${r.line}`, r.reason);
      const out = [];
      for (const c of batch.candles) {
        const bad = check(c);
        if (bad !== undefined) {
          reject(`${c.pair} ${new Date(c.windowStart).toISOString()}`, bad);
          continue;
        }
        try {
          const v = engine.update(c);
          if (v.ready) ready++;
          out.push(v);
        } catch (err) {
          reject(`${c.pair} ${new Date(c.windowStart).toISOString()}`, (err as Error).message);
        }
      }
      await writer.write(out);
    }
  } catch (err) {
    if ((err as Error).name === 'UsageError') throw new UsageError((err as Error).message);
    throw err;
  } finally {
    await writer.close();
  }
  process.stderr.write(
    `${n(writer.rows)} feature rows (${n(ready)} ready) in ${opts.output} in ${((performance.now() - started) / 1000).toFixed(1)} s` +
      `${engine.resets ? `; ${n(engine.resets)} gaps restarted the warm-up` : ''}${rejects ? `; ${n(rejects)} candles rejected` : ''}\n`,
  );
  if (writer.rows === 0) process.exitCode = 1;
}
