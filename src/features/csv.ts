import { AtomicFile } from '../core/files.ts';
import { FEATURE_COLUMNS, type FeatureVector } from './technical.ts';

export const FEATURE_CSV_HEADER = [
  'pair',
  'windowStart',
  'windowEnd',
  'close',
  'ready',
  ...FEATURE_COLUMNS,
].join(',');

/** One vector as a CSV row (numbers in JavaScript's shortest exact form; empty while warming up). */
export function featureCsvRow(f: FeatureVector): string {
  let row = `${f.pair},${f.windowStart},${f.windowEnd},${f.close},${f.ready}`;
  for (const v of f.values) row += v === null ? ',' : `,${v}`;
  return row;
}

/** Feature rows to a CSV file that appears whole on `close` (written beside it, then renamed), or not at all. */
export class FeatureCsvWriter {
  private readonly out: AtomicFile;
  rows = 0;
  /** `extraColumns`: appended after the technical ones (e.g. the news features), values appended to each vector. */
  constructor(path: string, extraColumns: readonly string[] = []) {
    this.out = new AtomicFile(path);
    this.out.stream.write([FEATURE_CSV_HEADER, ...extraColumns].join(',') + '\n');
  }
  async write(vs: readonly FeatureVector[]): Promise<void> {
    if (vs.length === 0) return;
    this.rows += vs.length;
    await this.out.write(vs.map(featureCsvRow).join('\n') + '\n');
  }
  async close(): Promise<void> {
    await this.out.commit();
  }
  async abort(): Promise<void> {
    await this.out.abort();
  }
}
