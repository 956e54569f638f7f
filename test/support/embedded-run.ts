import { rmSync } from 'node:fs';
import { after } from 'node:test';
import { LocalRegistry } from '../../src/training/registry/local.ts';
import { MODEL_COLUMNS } from '../../src/training/sources.ts';
import { registerModel, stumpModel } from './champion.ts';
import { scratchDir } from './scratch.ts';

/**
 * What the tests of `cryptocast run` on the embedded default share: the command line of a replay into a store file,
 * a champion of the test's own (so that predictions and error records are written whatever model setup trained), and
 * temporary folders removed after the test file.
 */

/** `cryptocast run` replaying `replay` (a day or a month) into the DuckDB file `file`: JSON events, no news, any port. */
export const replayRunArgs = (file: string, replay: string, extra: readonly string[] = []) => [
  'run',
  '--json',
  '--port',
  '0',
  '--no-news',
  '--replay',
  replay,
  '--store',
  `duckdb:${file}`,
  ...extra,
];

/**
 * Registers, as the champion `cryptocast-price` of the local registry at `root`, a model of one stump (a flat return
 * forecast, a wide band), and returns the environment that points `run` at it.
 */
export async function registerFlatChampion(root: string): Promise<NodeJS.ProcessEnv> {
  const flat = (a: number, b: number) => stumpModel(MODEL_COLUMNS.length, [{ f: 0, c: 0, a, b }]);
  await registerModel(new LocalRegistry(root), 'cryptocast-price', MODEL_COLUMNS, {
    model: flat(-0.4, 0.6),
    p10: flat(-8, -6),
    p90: flat(6, 8),
  });
  return { CRYPTOCAST_REGISTRY: root, CRYPTOCAST_MODEL_NAME: 'cryptocast-price' };
}

/** A maker of temporary folders (named from a prefix), all removed after the test file's tests. */
export function tempDirs(): (prefix: string) => string {
  const made: string[] = [];
  after(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });
  return (prefix) => {
    const d = scratchDir(prefix);
    made.push(d);
    return d;
  };
}
