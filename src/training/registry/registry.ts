import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { CryptocastError, ERR, fail } from '../../core/errors.ts';

/**
 * The model registry: every trained model with its lineage, and two aliases the rest of the system reads.
 *
 * - `champion`: the model the inference pipeline serves. Set only through the promotion gate (or by a person
 *   with `models promote` / `models rollback`), never by a failed or worse run.
 * - `challenger`: the latest model that was registered but not promoted, for comparison.
 *
 * One interface, two backends: a local directory (the embedded default) and MLflow (distributed), selected by
 * URL (`openRegistry`, in open.ts). A backend stores the card (JSON) and the artifact files of each version as they are;
 * it never interprets them. Every alias change is appended to an alias history, which `rollback` reads.
 */
export const ALIASES = ['champion', 'challenger'] as const;
export type Alias = (typeof ALIASES)[number];

const FoldMetricsSchema = z.object({
  fold: z.number().int().nonnegative(),
  trainFrom: z.number(),
  trainTo: z.number(),
  testFrom: z.number(),
  testTo: z.number(),
  n: z.number().int().nonnegative(),
  /** Metrics per predictor on this fold's test rows: `model`, `persistence`, `drift`, `linear`, … */
  metrics: z.record(z.string(), z.record(z.string(), z.number().nullable())),
});
export type FoldMetrics = z.infer<typeof FoldMetricsSchema>;

export const ModelCardSchema = z.object({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/),
  /** Assigned by the registry: 1, 2, 3, … per name. */
  version: z.number().int().positive(),
  createdAt: z.number(),
  /** The git commit of the code that trained it (with "+dirty" if the tree had changes). */
  codeVersion: z.string(),
  horizonMs: z.number().int().positive(),
  /** What the model predicts: the log return from windowEnd to windowEnd + horizon, in basis points. */
  target: z.literal('log_return_bps'),
  /** The feature sets the columns come from, and the model's input columns in order. */
  featureSets: z.array(z.object({ name: z.string(), version: z.number().int().positive() })),
  columns: z.array(z.string()).min(1),
  pairs: z.array(z.string()).min(1),
  trainingWindow: z.object({ from: z.number(), to: z.number() }),
  datasetFingerprint: z.string(),
  params: z.record(z.string(), z.unknown()),
  /**
   * Per input column over the training dataset (the rows the final model learns from): the mean of its present
   * values and the share of rows where it was missing. The predictor fills a column that was never missing with its
   * mean (src/inference/imputation.ts). Absent on cards trained before it was recorded.
   */
  columnStats: z
    .record(z.string(), z.object({ mean: z.number().nullable(), missing: z.number() }))
    .optional(),
  /** Walk-forward results, fold by fold, and the pooled summary over every test row. */
  folds: z.array(FoldMetricsSchema),
  summary: z.record(z.string(), z.unknown()),
  /** Artifact file names stored with the version (model.json, p10.json, p90.json, report.md, images…). */
  artifacts: z.array(z.string()),
  /** The promotion gate's decision when it was registered. */
  gate: z.object({ promoted: z.boolean(), reasons: z.array(z.string()) }).optional(),
});
export type ModelCard = z.infer<typeof ModelCardSchema>;
export type NewModelCard = Omit<ModelCard, 'version' | 'createdAt'>;

export interface AliasChange {
  alias: Alias;
  /** The version it now points to; null when the alias was removed. */
  version: number | null;
  previous: number | null;
  at: number;
  reason: string;
}

export interface ModelRegistry {
  readonly kind: 'local' | 'mlflow';
  /** Where it lives, for messages (no secrets). */
  readonly location: string;
  /** Stores a new version of `card.name` with the files of `artifactsDir` (only those listed in `card.artifacts`). */
  register(card: NewModelCard, artifactsDir: string): Promise<ModelCard>;
  /** Every version of a model, oldest first. */
  list(name: string): Promise<ModelCard[]>;
  get(name: string, version: number): Promise<ModelCard | undefined>;
  /** The version an alias points to, or undefined. */
  alias(name: string, alias: Alias): Promise<number | undefined>;
  /**
   * Points an alias at a version (which must exist) and records the change with its reason. With `ifCurrent`, only if
   * the alias points at `ifCurrent.version` now (undefined: at none); else `AliasMovedError`, and nothing changes.
   */
  setAlias(
    name: string,
    alias: Alias,
    version: number,
    reason: string,
    ifCurrent?: { version: number | undefined },
  ): Promise<void>;
  /** Every alias change of a model, oldest first. */
  aliasHistory(name: string): Promise<AliasChange[]>;
  /** Copies a version's artifacts into `dir` (created if needed) and returns the paths by file name. */
  download(name: string, version: number, dir: string): Promise<Record<string, string>>;
  close(): Promise<void>;
}

/**
 * The versions of `name` whose training run finished: a run ends by moving an alias (champion or challenger) to its
 * version, so a version no alias names now or ever named was registered by a run stopped in between (a SIGKILL, an
 * OOM) — its card holds the gate's verdict, but the verdict was never applied. The aliases as they are count too:
 * MLflow moves an alias before it records the change in the history.
 */
export async function finishedVersions(registry: ModelRegistry, name: string): Promise<Set<number>> {
  const finished = new Set<number>();
  for (const change of await registry.aliasHistory(name))
    if (change.version !== null) finished.add(change.version);
  for (const alias of ALIASES) {
    const version = await registry.alias(name, alias);
    if (version !== undefined) finished.add(version);
  }
  return finished;
}

/**
 * The folder a version's artifacts are downloaded to before they are read: `<root>/<registry>/<name>/<version>`, where
 * <registry> is a short hash of the registry's location. `root` (default `.data/model-cache`, relative to the folder
 * the command runs in) is shared by every run there: without the registry in the path, two runs on different
 * registries holding the same name and version wrote the same folder, and one could read the other's model between
 * its download and its read. A registry's versions never change, so within one folder every copy is the same.
 */
export function modelCacheFolder(
  registry: Pick<ModelRegistry, 'location'>,
  name: string,
  version: number,
  root = '.data/model-cache',
): string {
  const key = createHash('sha256').update(registry.location).digest('hex').slice(0, 12);
  return join(resolve(root), key, name, String(version));
}

/**
 * Downloads a version's artifacts into a folder of this call's own under `modelCacheFolder`, reads `names` as text, and
 * removes the folder. Two runs on the same registry in one working folder load the same version at the same moment
 * (both start together, or both see a promotion): into one shared folder, one's copy (a truncate, then a write) could
 * be read half-written by the other. A version never changes, so nothing is lost by not keeping the copy.
 */
export async function readArtifacts<N extends string>(
  registry: Pick<ModelRegistry, 'location' | 'download'>,
  name: string,
  version: number,
  names: readonly N[],
  root?: string,
): Promise<Record<N, string>> {
  const dir = join(
    modelCacheFolder(registry, name, version, root),
    `.load-${process.pid}-${randomBytes(4).toString('hex')}`,
  );
  try {
    const files = await registry.download(name, version, dir);
    const texts = {} as Record<N, string>;
    for (const f of names) {
      const path = files[f];
      if (path === undefined) throw new RegistryError(`${name} v${version}: ${f} was not downloaded`);
      texts[f] = await readFile(path, 'utf8');
    }
    return texts;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export class RegistryError extends CryptocastError {
  override readonly name: string = 'RegistryError';
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(ERR.REGISTRY.code, message, { exitCode: ERR.REGISTRY.exitCode, ...opts });
  }
}

/** `setAlias` with `ifCurrent`: the alias was moved by someone else meanwhile (it now points at `current`). */
export class AliasMovedError extends RegistryError {
  override readonly name: string = 'AliasMovedError';
  readonly current: number | undefined;
  constructor(name: string, alias: Alias, expected: number | undefined, current: number | undefined) {
    const v = (x: number | undefined) => (x === undefined ? 'none' : `v${x}`);
    super(`${name}: ${alias} is ${v(current)}, not ${v(expected)} as expected: not moved`);
    this.current = current;
  }
}

/**
 * A file of the registry that is missing or cannot be read (a damaged card, model file or aliases.json): its message
 * names the file and its hint says what to do. The registry itself answered: not a setting to fix.
 */
export class RegistryFileError extends RegistryError {
  override readonly name: string = 'RegistryFileError';
}

/** A version that is not registered: the code `models show 99` and `backtest --model 99` give alike. */
export const noSuchVersion = (name: string, version: number) =>
  fail(ERR.MODEL_VERSION, `${name} has no version ${version}`);

export const DEFAULT_MODEL_NAME = 'cryptocast-price';

/**
 * A registered model's name, as both registries take it (a folder of the local one, a name in MLflow): a letter or
 * digit, then letters, digits, `.`, `_`, `-`, 100 at most. The CLI checks `--name` with it as the flag is read.
 */
export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
