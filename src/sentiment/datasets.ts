import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parse } from 'csv-parse/sync';
import type { Label } from './labels.ts';

/**
 * The human-labelled sets in `shared/data/crypto-news-sentiment/labelled/`, each read as it is distributed:
 * - CryptoLin (`CryptoLin_IE.csv`): column `news`, label `final_manual_labelling` ∈ {-1, 0, 1};
 * - Financial PhraseBank (`Sentences_*.txt`): ISO-8859-1, one `sentence@label` per line, split on the last `@`;
 * - Twitter financial news (`sent_*.csv`): `text,label` with 0 = bearish, 1 = bullish, 2 = neutral (quoted
 *   newlines inside tweets: a real CSV parser).
 */
export interface Example {
  text: string;
  label: Label;
}

export function loadDataset(path: string): { name: string; examples: Example[]; skipped?: string[] } {
  const name = basename(path);
  if (/CryptoLin/i.test(name)) {
    const rows = parse(readFileSync(path, 'utf8'), {
      columns: true,
      skip_empty_lines: true,
      relax_quotes: true,
    }) as Record<string, string>[];
    const map: Record<string, Label> = { '-1': 'negative', '0': 'neutral', '1': 'positive' };
    return {
      name: 'CryptoLin',
      examples: rows
        .filter((r) => map[r.final_manual_labelling ?? ''] !== undefined)
        .map((r) => ({ text: r.news ?? '', label: map[r.final_manual_labelling!]! })),
    };
  }
  if (/^Sentences_.*\.txt$/i.test(name)) {
    const examples: Example[] = [];
    const skipped: string[] = [];
    readFileSync(path, 'latin1')
      .split(/\r?\n/)
      .forEach((l, i) => {
        const at = l.lastIndexOf('@');
        const label = l.slice(at + 1).trim();
        if (at > 0 && (label === 'negative' || label === 'neutral' || label === 'positive'))
          examples.push({ text: l.slice(0, at).trim(), label });
        else if (l.trim() !== '')
          skipped.push(`line ${i + 1}: no "sentence@label" (${JSON.stringify(l.slice(0, 40))})`);
      });
    return { name: `FinancialPhraseBank ${name.replace(/^Sentences_|\.txt$/g, '')}`, examples, skipped };
  }
  if (/^sent_(train|valid)\.csv$/i.test(name)) {
    const rows = parse(readFileSync(path, 'utf8'), { columns: true, skip_empty_lines: true }) as Record<
      string,
      string
    >[];
    const map: Record<string, Label> = { '0': 'negative', '1': 'positive', '2': 'neutral' };
    return {
      name: `Twitter financial news ${name.replace(/^sent_|\.csv$/g, '')}`,
      examples: rows.map((r) => ({ text: r.text ?? '', label: map[r.label ?? '']! })),
    };
  }
  throw new Error(
    `unknown dataset ${name}: expected CryptoLin_IE.csv, Sentences_*.txt or sent_{train,valid}.csv`,
  );
}

/**
 * `limit` examples spread evenly over the set (every k-th), not the first ones: the files are grouped by source
 * or label, so a prefix would be a biased sample.
 */
export function evenSample<T>(xs: readonly T[], limit: number): T[] {
  if (limit >= xs.length) return [...xs];
  const step = xs.length / limit;
  return Array.from({ length: limit }, (_, i) => xs[Math.floor(i * step)]!);
}

/**
 * The fixed train/test split of every labelled text: by a hash of the text, so it is the same in every set (the
 * PhraseBank AllAgree sentences are also in 75Agree, and fall on the same side in both), for every backend, and
 * on every machine. Trained heads only ever see `train` texts; evaluations report on `test` texts.
 */
export function splitOf(text: string): 'train' | 'test' {
  return createHash('sha256').update(text.trim()).digest()[0]! % 2 === 0 ? 'train' : 'test';
}

/**
 * What a classifier head is fitted on: the `train` half of each set (non-empty texts), or `limit` examples per set
 * spread evenly over it; with one line per set saying what was taken (the head records them as `trainedOn`).
 */
export function trainHalves(
  sets: readonly { name: string; examples: Example[] }[],
  limit?: number,
): { examples: Example[]; trainedOn: string[] } {
  const examples: Example[] = [];
  const trainedOn: string[] = [];
  for (const set of sets) {
    const half = set.examples.filter((e) => e.text.trim() !== '' && splitOf(e.text) === 'train');
    const taken = limit === undefined ? half : evenSample(half, limit);
    examples.push(...taken);
    trainedOn.push(
      taken.length === half.length
        ? `${set.name}: ${taken.length} (train half)`
        : `${set.name}: ${taken.length} of ${half.length} (train half, spread evenly)`,
    );
  }
  return { examples, trainedOn };
}
