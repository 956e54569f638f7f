import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { DEFAULT_TRAINING_SETS } from '../../src/cli/commands/sentiment.ts';
import { loadDataset, trainHalves } from '../../src/sentiment/datasets.ts';
import { modelName, modelPath } from '../../src/sentiment/local-llm.ts';
import { CLI } from '../support/cli.ts';
import { SHARED_DATA } from '../support/data.ts';

/**
 * The classifier head shipped in models/sentiment/ is what its documented command makes from the documented data.
 *
 * Retraining it in full embeds 3,035 texts with the 270M model: 7–14 minutes on an idle 2-core machine, over 20 with
 * a busy one, most of a CI run. So the suite checks the two halves of that claim separately: the shipped head says it
 * was fitted on exactly the documented train halves, and the command, run with the real weights on 100 texts of each
 * set (spread evenly), still gives the reference head made by the same command (test/fixtures/sentiment/). A change
 * to the embedding, the prompt, the split or the fit changes that head and fails here: then retrain both (commands
 * below). The full retraining runs with CRYPTOCAST_TEST_SHIPPED_HEAD=1.
 *
 *   cryptocast sentiment train-head --output models/sentiment/gemma-3-270m-q4_k_m.head.json
 *   cryptocast sentiment train-head --threads 1 --limit 100 --output test/fixtures/sentiment/head-limit-100.json
 */
const SHIPPED = join(import.meta.dirname, '..', '..', 'models', 'sentiment', 'gemma-3-270m-q4_k_m.head.json');
const REFERENCE = join(import.meta.dirname, '..', 'fixtures', 'sentiment', 'head-limit-100.json');

interface Head {
  model: string;
  dimensions: number;
  trainedOn: string[];
  examples: number;
  mean: number[];
  std: number[];
  weights: number[][];
  bias: number[];
}

const read = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Head;
const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));

async function trainHead(extra: string[]): Promise<Head> {
  const out = join(mkdtempSync(join(tmpdir(), 'cc-head-')), 'head.json');
  await promisify(execFile)(
    CLI,
    // One thread: llama.cpp's threads wait for each other at every step, so two of them on a 2-core machine that
    // another job keeps busy are many times slower than one.
    ['sentiment', 'train-head', '--model-path', modelPath(), '--output', out, '--threads', '1', ...extra],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  return read(out);
}

/** Same embeddings, same deterministic fit: equal up to floating-point summation order. */
function assertSameHead(fresh: Head, expected: Head): void {
  assert.deepEqual(
    [fresh.model, fresh.dimensions, fresh.trainedOn, fresh.examples],
    [expected.model, expected.dimensions, expected.trainedOn, expected.examples],
  );
  assert.ok(maxDiff(fresh.mean, expected.mean) < 1e-9, 'mean');
  assert.ok(maxDiff(fresh.std, expected.std) < 1e-9, 'std');
  assert.ok(maxDiff(fresh.bias, expected.bias) < 1e-6, 'bias');
  for (let k = 0; k < expected.weights.length; k++)
    assert.ok(maxDiff(fresh.weights[k]!, expected.weights[k]!) < 1e-6, `weights of class ${k}`);
}

describe('the shipped sentiment head', () => {
  it('was fitted on the documented sets’ train halves, for the installed weights', () => {
    const shipped = read(SHIPPED);
    const { examples, trainedOn } = trainHalves(
      DEFAULT_TRAINING_SETS.map((f) => loadDataset(join(SHARED_DATA, f))),
    );
    assert.deepEqual(
      [shipped.model, shipped.trainedOn, shipped.examples],
      [modelName(modelPath()), trainedOn, examples.length],
    );
    assert.equal(shipped.trainedOn.length, 2);
  });

  // 200 texts: about a minute idle, a few with a core kept busy; the limit leaves room for a slow CI machine.
  it('the command, on 100 texts of each set, still gives the reference head', {
    timeout: 900_000,
  }, async () => {
    const reference = read(REFERENCE);
    assert.equal(reference.examples, 200);
    assertSameHead(await trainHead(['--limit', '100']), reference);
  });

  it('retraining it from the whole train halves gives the same head', {
    timeout: 2_700_000,
    skip: process.env.CRYPTOCAST_TEST_SHIPPED_HEAD !== '1' && 'set CRYPTOCAST_TEST_SHIPPED_HEAD=1 (7–14 min)',
  }, async () => {
    assertSameHead(await trainHead([]), read(SHIPPED));
  });
});
