import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

/**
 * Benchmarks print their figures and record them in docs/benchmarks.md, one section per benchmark, replaced on
 * each run, stamped with the machine and the date. Figures are measured, never asserted: CI does not run these.
 */
const DOC = join(import.meta.dirname, '..', 'docs', 'benchmarks.md');

export function machine(): string {
  const c = cpus();
  return `${c.length} × ${c[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}`;
}

export function recordBenchmark(id: string, title: string, body: string): void {
  let doc: string;
  try {
    doc = readFileSync(DOC, 'utf8');
  } catch {
    doc =
      '# Benchmarks\n\nMeasured by the scripts in `bench/` (run them with `./bench/run <name>`); each section is rewritten by its script. ' +
      'These machines are shared and noisy: compare figures measured side by side in one run (ratios), not across runs.\n';
  }
  const start = `<!-- bench:${id} -->`;
  const end = `<!-- /bench:${id} -->`;
  const section = `${start}\n## ${title}\n\n_${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC · ${machine()}_\n\n${body.trim()}\n${end}`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  doc =
    i >= 0 && j > i
      ? doc.slice(0, i) + section + doc.slice(j + end.length)
      : doc.trimEnd() + '\n\n' + section + '\n';
  writeFileSync(DOC, doc);
  process.stdout.write(`\nrecorded in docs/benchmarks.md (${id})\n`);
}

/** Peak resident memory of this process so far, MiB. */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

export const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
