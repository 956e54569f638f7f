import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { parse as parseCsv } from 'csv-parse';
import { ERR, fail } from '../core/errors.ts';
import { summarise } from '../runtime/in-process-bus.ts';
import { validate } from '../runtime/validated.ts';
import { deadLetter } from '../schemas/dlq.ts';
import { type NewsItem, NewsItemSchema } from '../schemas/news.ts';
import { coinsIn, linkDropped, newsId, normaliseUrl, plainText } from './normalise.ts';
import type { NewsSink, NewsSource } from './source.ts';

/**
 * Replays the recorded crypto news (`shared/data/crypto-news-sentiment/news/`: semicolon-separated
 * `date;sentiment;source;subject;text;title;url`, dates `D-M-YYYY HH:MM`, taken as UTC — the file does not say).
 * The recording has no fetch times: an item is taken as seen `availabilityLagMs` after its publication (default
 * 5 minutes, a typical feed delay), so nothing is used before it could have been read.
 */
export interface RecordedNewsOptions {
  file: string;
  availabilityLagMs?: number;
  batchSize?: number;
}

export class RecordedNewsSource implements NewsSource {
  readonly name = 'recorded-news';
  private readonly o: RecordedNewsOptions;

  constructor(o: RecordedNewsOptions) {
    this.o = o;
  }

  async run(sink: NewsSink, signal: AbortSignal): Promise<void> {
    const raw = createReadStream(this.o.file);
    const csv = parseCsv({
      delimiter: ';',
      columns: true,
      relax_quotes: true,
      relax_column_count: true,
      skip_empty_lines: true,
      info: true,
    });
    // pipeline, not pipe: a file that cannot be read (missing, not gzip) fails the loop below instead of being an
    // unhandled 'error' event that crashes the process. The reading error is noted to tell it from a sink's.
    let readError: Error | undefined;
    const note = (e: Error) => {
      readError ??= e;
    };
    raw.on('error', note);
    const gunzip = this.o.file.endsWith('.gz') ? createGunzip().on('error', note) : undefined;
    const parser = gunzip ? pipeline(raw, gunzip, csv, () => {}) : pipeline(raw, csv, () => {});
    try {
      await this.replay(parser, sink, signal);
    } catch (err) {
      if (readError === undefined) throw err;
      throw fail(ERR.INPUT, `cannot read the news recording ${this.o.file}: ${readError.message}`, {
        cause: readError,
      });
    }
  }

  private async replay(parser: AsyncIterable<unknown>, sink: NewsSink, signal: AbortSignal): Promise<void> {
    const lag = this.o.availabilityLagMs ?? 300_000;
    const origin = `recorded:${basename(this.o.file)}`;
    let batch: NewsItem[] = [];
    for await (const rec of parser as AsyncIterable<{
      record: Record<string, string>;
      info: { lines: number };
    }>) {
      if (signal.aborted) break;
      const r = rec.record;
      const m = /^(\d{1,2})-(\d{1,2})-(\d{4}) (\d{1,2}):(\d{2})$/.exec((r.date ?? '').trim());
      const publishedAt = m
        ? Date.UTC(Number(m[3]), Number(m[2]) - 1, Number(m[1]), Number(m[4]), Number(m[5]))
        : Number.NaN;
      const title = plainText(r.title ?? '');
      const summary = plainText(r.text ?? '');
      const url = normaliseUrl(r.url ?? '');
      const v = validate(NewsItemSchema, {
        v: 1,
        id: newsId(r.source ?? 'unknown', url || title),
        source: r.source || 'unknown',
        title,
        summary,
        url,
        publishedAt,
        fetchedAt: publishedAt + lag,
        coins: coinsIn(`${title} ${summary}`),
      });
      if (!v.success) {
        await sink.reject(
          deadLetter({
            service: 'news',
            origin,
            kind: 'parse',
            reason: `line ${rec.info.lines}: ${summarise(v.error)}`,
            payload: r,
          }),
        );
        continue;
      }
      batch.push(v.data);
      if (linkDropped(r.url ?? '', url)) sink.linksDropped?.(1);
      if (batch.length >= (this.o.batchSize ?? 500)) {
        await sink.news(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await sink.news(batch);
  }
}
