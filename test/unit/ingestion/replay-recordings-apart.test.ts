import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReplaySource } from '../../../src/ingestion/replay.ts';
import type { SourceSink } from '../../../src/ingestion/source.ts';
import { BINANCE_CAPTURE, KRAKEN_2019_CSV } from '../../support/data.ts';
import { settlesWithin } from '../../support/wait.ts';

/**
 * A paced replay of recordings of different days (the default replay of `cryptocast run`: a Binance capture of 2024
 * and Kraken trades of 2025) waited out the time between them: at --speed 60 the run sat silent for days after the
 * first recording. Here a 2019 Kraken day and the 2024 capture, five years apart: at 100,000× the gap alone was
 * 26 minutes of waiting, the market time of both under a second.
 */
describe('ReplaySource: paced recordings of different days', () => {
  it('plays the second recording at once after the first, not after the years between them', async () => {
    const sink: SourceSink = { trades() {}, watermark() {}, reject() {} };
    const stop = new AbortController();
    const played = new ReplaySource({ files: [KRAKEN_2019_CSV, BINANCE_CAPTURE], speed: 100_000 }).run(
      sink,
      stop.signal,
    );
    // The replay's end, with a deadline it must beat well on a busy machine too (a stop ends it if it is late).
    const outcome = await settlesWithin(
      played.then(() => 'played' as const),
      90_000,
      'the replay, which waited out the years between the recordings',
      () => stop.abort(),
    ).catch(async (err: Error) => {
      await played;
      return err.message;
    });
    assert.equal(outcome, 'played', 'the replay waited out the years between the recordings');
  });
});
