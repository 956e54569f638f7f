import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { DEFAULT_TRAINING_SETS } from '../../src/cli/commands/sentiment.ts';
import { evenSample, loadDataset, splitOf, trainHalves } from '../../src/sentiment/datasets.ts';
import { LocalLlmBackend, modelName, modelPath } from '../../src/sentiment/local-llm.ts';
import { predictProba } from '../../src/sentiment/softmax.ts';
import { CLI } from '../support/cli.ts';
import { SHARED_DATA } from '../support/data.ts';
import { scratchDir } from '../support/scratch.ts';

/**
 * The classifier head shipped in models/sentiment/ is what its documented command makes from the documented data.
 *
 * Retraining it in full embeds 3,035 texts with the 270M model: 7–14 minutes on an idle 2-core machine, over 20 with
 * a busy one, most of a CI run. So the suite checks the two halves of that claim separately: the shipped head says it
 * was fitted on exactly the documented train halves, and the command, run with the real weights on 100 texts of each
 * set (spread evenly), still gives the reference head made by the same command (test/fixtures/sentiment/), compared by
 * behaviour (assertSameHead: the digits differ between CPUs). A change to the embedding, the prompt or the split
 * fails here: then retrain both (commands below). The full retraining runs with CRYPTOCAST_TEST_SHIPPED_HEAD=1.
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

async function trainHead(extra: string[]): Promise<Head> {
  const out = join(scratchDir('cc-head-'), 'head.json');
  await promisify(execFile)(
    CLI,
    // One thread: llama.cpp's threads wait for each other at every step, so two of them on a 2-core machine that
    // another job keeps busy are many times slower than one.
    ['sentiment', 'train-head', '--model-path', modelPath(), '--output', out, '--threads', '1', ...extra],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  return read(out);
}

/** Relative L2 distance of two vectors. */
const relDiff = (a: readonly number[], b: readonly number[]) =>
  Math.hypot(...a.map((x, i) => x - b[i]!)) / Math.hypot(...b);

/**
 * Held-out texts (the `test` half, which no head saw), a few of each default set, spread evenly: what two heads are
 * compared on.
 */
function heldOut(perSet: number): string[] {
  return DEFAULT_TRAINING_SETS.flatMap((f) =>
    evenSample(
      loadDataset(join(SHARED_DATA, f)).examples.filter(
        (e) => e.text.trim() !== '' && splitOf(e.text) === 'test',
      ),
      perSet,
    ).map((e) => e.text),
  );
}

/**
 * The same command on the same data, compared by what the head does, not by its digits. llama.cpp picks its SIMD
 * kernels by CPU (AVX2, AVX-512 VNNI…), so a text's embedding differs in the third decimal between machines (cosine
 * 0.99999; 0.5 % on the mean embedding between the machine that made the reference and an AVX-512 one), and a
 * 640-dimension head fitted on 200 separable examples turns that into 10–20 % on its weights. What must hold on any
 * machine: the same data (names, sizes), the same embedding statistics to 2 % (a change of prompt, pooling or
 * weights moves them far more), and the same labels on held-out texts embedded here.
 */
async function assertSameHead(fresh: Head, expected: Head): Promise<void> {
  assert.deepEqual(
    [fresh.model, fresh.dimensions, fresh.trainedOn, fresh.examples],
    [expected.model, expected.dimensions, expected.trainedOn, expected.examples],
  );
  assert.ok(relDiff(fresh.mean, expected.mean) < 0.02, `mean: ${relDiff(fresh.mean, expected.mean)}`);
  assert.ok(relDiff(fresh.std, expected.std) < 0.02, `std: ${relDiff(fresh.std, expected.std)}`);
  const embedder = new LocalLlmBackend({ modelPath: modelPath(), headPath: null, threads: 1 });
  try {
    const texts = heldOut(30);
    let same = 0;
    for (const text of texts) {
      const x = await embedder.embed(text);
      if (argmax(predictProba(fresh, x)) === argmax(predictProba(expected, x))) same++;
    }
    assert.ok(same >= texts.length * 0.95, `the same label on ${same} of ${texts.length} held-out texts`);
  } finally {
    await embedder.close();
  }
}

const argmax = (p: readonly number[]) => p.indexOf(Math.max(...p));

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
    await assertSameHead(await trainHead(['--limit', '100']), reference);
  });

  it('retraining it from the whole train halves gives the same head', {
    timeout: 2_700_000,
    skip: process.env.CRYPTOCAST_TEST_SHIPPED_HEAD !== '1' && 'set CRYPTOCAST_TEST_SHIPPED_HEAD=1 (7–14 min)',
  }, async () => {
    await assertSameHead(await trainHead([]), read(SHIPPED));
  });
});
