import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { reportDependency } from '../core/dependency.ts';
import { CryptocastError, ERR, fail } from '../core/errors.ts';
import { type Logger, log as rootLog } from '../core/log.ts';
import { metrics } from '../core/metrics.ts';
import { backoffDelay } from '../core/retry.ts';
import { MAX_TIMER_MS } from '../core/timer-limit.ts';
import { FEATURE_COLUMNS, FEATURE_SET } from '../features/technical.ts';
import type { FeatureVectorRecord } from '../schemas/feature.ts';
import {
  type ModelCard,
  type ModelRegistry,
  modelCacheFolder,
  RegistryFileError,
  readArtifacts,
} from '../training/registry/registry.ts';
import { fillRow, type ImputationPlan, imputationPlan } from './imputation.ts';
import { XgbModel } from './xgboost-model.ts';

/** A model's three outputs for one vector, in basis points of log return from windowEnd to windowEnd + horizon. */
export interface ModelOutput {
  returnBps: number;
  p10Bps: number;
  p90Bps: number;
}

/** A loaded champion: its card and a predictor over technical feature vectors. */
export interface ServingModel {
  readonly card: ModelCard;
  /** Evaluates the point model and both quantile models on a technical vector (null values are missing). */
  predict(vector: FeatureVectorRecord): ModelOutput;
}

/** Anything that hands out the model currently served (the holder, or a fixed model in tests). */
export interface ModelSource {
  current(): ServingModel | undefined;
  /**
   * True while nothing is served but a champion is expected soon: the registry does not answer, or it names a
   * champion whose card or files could not be fetched (a 5xx, a timeout, an I/O error). As opposed to: there is no
   * champion, or the one named can never be served. Consumers hold their input then, rather than skip it.
   */
  waitingForChampion?(): boolean;
}

export class ModelLoadError extends Error {
  override readonly name = 'ModelLoadError';
}

const TECHNICAL_INDEX = new Map<string, number>(FEATURE_COLUMNS.map((c, i) => [c, i]));
const ARTIFACTS = ['model.json', 'p10.json', 'p90.json'] as const;

/**
 * Checks that a card can be served from technical feature vectors: the target is the log return in bps and every
 * input column is a technical feature (a model trained with news columns needs the news set, not served here).
 * Returns, per model input, the index of its column in a technical vector's `values`.
 */
export function columnIndex(card: ModelCard): number[] {
  if (card.target !== 'log_return_bps')
    throw new ModelLoadError(
      `${card.name} v${card.version}: target "${card.target}" is not log_return_bps; the predictor cannot serve it`,
    );
  // A column keeps its name across feature-set versions while its definition may change (v2 of the technical set
  // computing rsi_14 otherwise): a model is served only on the version it was trained on.
  const technical = card.featureSets.find((f) => f.name === FEATURE_SET.name);
  if (technical !== undefined && technical.version !== FEATURE_SET.version)
    throw new ModelLoadError(
      `${card.name} v${card.version}: trained on ${FEATURE_SET.name} v${technical.version}, the live features are ` +
        `v${FEATURE_SET.version}; the predictor cannot serve it (retrain on the live feature set)`,
    );
  const missing = card.columns.filter((c) => !TECHNICAL_INDEX.has(c));
  if (missing.length > 0)
    throw new ModelLoadError(
      `${card.name} v${card.version}: columns ${missing.join(', ')} are not in the technical feature set ` +
        `(${FEATURE_SET.name} v${FEATURE_SET.version}); the predictor serves technical features only`,
    );
  return card.columns.map((c) => TECHNICAL_INDEX.get(c)!);
}

/** Builds the serving model of a card from its three XGBoost JSON documents (already read). */
export function servingModel(
  card: ModelCard,
  docs: Record<(typeof ARTIFACTS)[number], string>,
): ServingModel {
  const index = columnIndex(card);
  const models = ARTIFACTS.map((f) => {
    let m: XgbModel;
    try {
      m = XgbModel.fromJson(docs[f]);
    } catch (err) {
      throw new ModelLoadError(`${card.name} v${card.version}: ${f}: ${(err as Error).message}`);
    }
    if (m.numFeatures !== index.length)
      throw new ModelLoadError(
        `${card.name} v${card.version}: ${f} takes ${m.numFeatures} features, the card lists ${index.length} columns`,
      );
    if (m.featureNames.length > 0 && m.featureNames.join(',') !== card.columns.join(','))
      throw new ModelLoadError(
        `${card.name} v${card.version}: ${f} was trained on columns ${m.featureNames.join(',')}, the card lists ${card.columns.join(',')}`,
      );
    return m;
  });
  const [point, p10, p90] = models as [XgbModel, XgbModel, XgbModel];
  const row = new Float32Array(index.length);
  const n = FEATURE_COLUMNS.length;
  const plan = imputationPlan(card);
  const filled = new Int32Array(index.length);
  const reported = new Int32Array(index.length);
  return {
    card,
    predict(vector) {
      if (vector.values.length !== n)
        throw new ModelLoadError(`a technical vector has ${n} values, got ${vector.values.length}`);
      for (let j = 0; j < index.length; j++) row[j] = vector.values[index[j]!] ?? Number.NaN;
      if (fillRow(plan, row, filled) > 0) reportFills(card, plan, filled, reported);
      return { returnBps: point.predict(row), p10Bps: p10.predict(row), p90Bps: p90.predict(row) };
    },
  };
}

/**
 * What `fillRow` filled since the last report (src/inference/imputation.ts): counted per column in the metrics, said
 * once per column in the log. Runs only when something was filled: a complete vector costs nothing here.
 */
function reportFills(card: ModelCard, plan: ImputationPlan, filled: Int32Array, reported: Int32Array): void {
  for (let j = 0; j < filled.length; j++) {
    if (filled[j] === reported[j]) continue;
    const column = plan.inputs[j]!;
    metrics.predictorImputed.inc({ column }, filled[j]! - reported[j]!);
    if (reported[j] === 0)
      rootLog.warn(
        { model: card.name, version: card.version, column, value: plan.fill[j] },
        `${column} is missing (the source may not provide it) and ${card.name} v${card.version} never saw it missing in training: filled with its training mean`,
      );
    reported[j] = filled[j]!;
  }
}

export interface ChampionHolderOptions {
  /** Registered model name. */
  name: string;
  /** Where artifacts are downloaded to (one folder per registry and version, `modelCacheFolder`). Default `.data/model-cache`. */
  cacheDir?: string;
  /**
   * How often the champion alias is read. Default 30 s. From 1 ms to MAX_TIMER_MS, else CC_ERR_CONFIG as the holder is
   * built: a longer or non-positive one (a library caller's; `service predictor --poll` is checked as it is read) made a
   * timer that fired every millisecond.
   */
  pollMs?: number;
  logger?: Logger;
}

/**
 * A failure to load a version that trying again will not mend: the card or its files cannot be served (columns,
 * target, missing artifacts, a model that does not parse) or the model cache folder cannot be written. Anything else
 * (the registry failing or timing out mid-download, a read error) may pass, and is retried soon.
 */
function isPermanentLoadFailure(err: unknown): boolean {
  return (
    err instanceof ModelLoadError ||
    err instanceof RegistryFileError || // a damaged version: a card not JSON, a listed file missing
    (err instanceof CryptocastError && (err.code === ERR.MODEL.code || err.code === ERR.MODEL_VERSION.code))
  );
}

/**
 * Serves the champion of a registered model: downloads its artifacts, builds the point and quantile models, and
 * polls the `champion` alias. When the alias moves (a promotion, or a rollback), the new version is loaded in full
 * first and then swapped in by one assignment, so every prediction uses one whole model and there is no gap: the
 * old champion serves until then. A version that fails to load (bad files, columns the predictor cannot provide,
 * an unreachable registry) leaves the old champion serving; the failure is logged, and retried at the next poll.
 * While nothing is served yet, a failure that may pass (the registry away, or a download of the named champion
 * failing) is retried soon with back-off and reported by `waitingForChampion()`, so the predictor holds its input.
 */
export class ChampionHolder implements ModelSource {
  readonly stats = { loads: 0, swaps: 0, failures: 0, polls: 0 };
  private readonly registry: ModelRegistry;
  private readonly name: string;
  private readonly cacheDir: string;
  readonly pollMs: number;
  private readonly log: Logger;
  private model: ServingModel | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<boolean> | undefined;
  /** The last version that failed to load and how many times, to log its first failure loudly, then every 10th. */
  private failed: { version: number; times: number } | undefined;

  constructor(registry: ModelRegistry, opts: ChampionHolderOptions) {
    this.registry = registry;
    this.name = opts.name;
    this.cacheDir = resolve(opts.cacheDir ?? '.data/model-cache');
    this.pollMs = opts.pollMs ?? 30_000;
    if (!(this.pollMs >= 1 && this.pollMs <= MAX_TIMER_MS))
      throw fail(
        ERR.CONFIG,
        `ChampionHolder pollMs must be from 1 to ${MAX_TIMER_MS} ms (a timer set longer, or shorter, fires every millisecond), got ${this.pollMs}`,
      );
    this.log = (opts.logger ?? rootLog).child({ component: 'champion', model: opts.name });
  }

  current(): ServingModel | undefined {
    return this.model;
  }

  /** Why the champion could not be loaded at the last try (undefined once one is served, or none is named). */
  loadFailure(): { version: number; message: string; hint?: string } | undefined {
    return this.lastFailure;
  }

  private lastFailure: { version: number; message: string; hint?: string } | undefined;

  /** The registry did not answer the last poll. */
  private unreachable = false;
  /** The champion alias disappeared while a model is served, and that was said. */
  private aliasGoneWarned = false;
  /** The last poll named a champion, and fetching its card or files failed in a way that may pass. */
  private fetchFailed = false;
  private retries = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  waitingForChampion(): boolean {
    return this.model === undefined && (this.unreachable || this.fetchFailed);
  }

  private retrySoon(): void {
    if (this.retryTimer !== undefined) return;
    const delay = backoffDelay(this.retries++, { initialMs: 500, maxMs: this.pollMs });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.refresh();
    }, delay);
    this.retryTimer.unref();
  }

  /** Loads the current champion (if there is one) and starts polling the alias. */
  async start(): Promise<void> {
    await this.refresh();
    if (this.model === undefined && !this.waitingForChampion())
      this.log.warn('no champion yet: no predictions until one is promoted');
    this.timer = setInterval(() => {
      void this.refresh();
    }, this.pollMs);
    this.timer.unref();
    if (this.waitingForChampion()) this.retrySoon();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.timer = undefined;
    this.retryTimer = undefined;
  }

  /**
   * Reads the alias once and, if it points elsewhere than the served version, loads and swaps. Resolves to true
   * when a new champion was swapped in. Never rejects: failures are logged and counted. Calls do not overlap.
   */
  refresh(): Promise<boolean> {
    this.inFlight ??= this.poll().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async poll(): Promise<boolean> {
    this.stats.polls++;
    let version: number | undefined;
    try {
      version = await this.registry.alias(this.name, 'champion');
      this.unreachable = false;
      reportDependency('registry', undefined, this.log);
    } catch (err) {
      this.unreachable = true;
      reportDependency('registry', err, this.log);
      // Until a first champion is loaded, ask again soon (with back-off) rather than after a full poll period.
      if (this.model === undefined && this.timer !== undefined) this.retrySoon();
      return false;
    }
    if (version === undefined && this.model !== undefined && !this.aliasGoneWarned) {
      // Deleting a version in MLflow removes its aliases: the served model goes on (nothing better to serve), but
      // a restart would serve nothing — said once, until a champion is named again.
      this.aliasGoneWarned = true;
      this.log.warn(
        { serving: this.model.card.version },
        'the champion alias is gone from the registry: the model loaded keeps serving; a restart would serve none',
      );
    }
    if (version !== undefined) this.aliasGoneWarned = false;
    if (version === undefined || version === this.model?.card.version) {
      this.fetchFailed = false;
      // Nothing named fails now (a rollback to the version served, or no champion): a failure kept from before was
      // reported as current, and the same broken version promoted again counted on from it, its error not logged.
      this.failed = undefined;
      this.lastFailure = undefined;
      return false;
    }
    try {
      const next = await this.load(version);
      const previous = this.model?.card.version;
      this.model = next; // the swap: one assignment, after the new model is complete
      this.stats.loads++;
      if (previous !== undefined) this.stats.swaps++;
      this.failed = undefined;
      this.lastFailure = undefined;
      this.fetchFailed = false;
      this.retries = 0;
      this.log.info(
        { version, previous, columns: next.card.columns.length, horizonMs: next.card.horizonMs },
        previous === undefined ? 'champion loaded' : 'new champion swapped in',
      );
      return true;
    } catch (err) {
      this.stats.failures++;
      metrics.championLoadFailures.inc({ model: this.name });
      const times = this.failed?.version === version ? this.failed.times + 1 : 1;
      this.failed = { version, times };
      const hint = (err as { hint?: unknown }).hint;
      this.lastFailure = {
        version,
        message: (err as Error).message,
        ...(typeof hint === 'string' ? { hint } : {}),
      };
      this.fetchFailed = !isPermanentLoadFailure(err);
      // Nothing served and the failure may pass: ask again soon (with back-off), and the predictor holds meanwhile.
      if (this.model === undefined && this.fetchFailed && this.timer !== undefined) this.retrySoon();
      if (times === 1 || times % 10 === 0)
        this.log.error(
          {
            version,
            serving: this.model?.card.version ?? null,
            attempts: times,
            err: (err as Error).message,
          },
          this.model !== undefined
            ? 'cannot load the new champion: the previous one keeps serving'
            : this.fetchFailed
              ? 'cannot fetch the champion: features are held and it is retried soon'
              : 'cannot load the champion: no predictions until it loads',
        );
      return false;
    }
  }

  private load(version: number): Promise<ServingModel> {
    return loadServingModel(this.registry, this.name, version, this.cacheDir);
  }
}

/**
 * Loads a registered version as the predictor does: its card (refused early when its target or columns cannot be
 * served), then its three model files through the model cache folder `cacheDir`. Throws `ModelLoadError` when the
 * version can never be served, the `ERR.MODEL` error when the cache folder cannot be written, anything else when the
 * registry or a read failed.
 */
export async function loadServingModel(
  registry: ModelRegistry,
  name: string,
  version: number,
  cacheDir: string,
): Promise<ServingModel> {
  const card = await registry.get(name, version);
  if (card === undefined) throw new ModelLoadError(`${name} has no version ${version}`);
  columnIndex(card); // refuse early, before downloading anything
  const missing = ARTIFACTS.filter((f) => !card.artifacts.includes(f));
  if (missing.length > 0)
    throw new ModelLoadError(`${name} v${version} has no ${missing.join(', ')} among its artifacts`);
  const target = modelCacheFolder(registry, name, version, cacheDir);
  // The artifacts are copied here first. A cache folder that cannot be written (`.data` a file, a read-only disk)
  // is said as such: the registry's download blamed the registry ("… is not a folder"), which was fine.
  try {
    await mkdir(target, { recursive: true });
    await access(target, constants.W_OK);
  } catch (err) {
    throw fail(
      ERR.MODEL,
      `cannot write the model cache folder ${target}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      {
        hint: `the champion's files are copied there before they are loaded (relative to the folder the command runs in): run it where .data/ is a writable folder`,
        cause: err,
      },
    );
  }
  return servingModel(card, await readArtifacts(registry, name, version, ARTIFACTS, cacheDir));
}

/**
 * Why the predictor could not serve a registered version, or undefined when it can: the version is loaded exactly as
 * the predictor loads a champion (`loadServingModel`), into a temporary cache folder removed afterwards (the check
 * must not depend on the folder the trainer or the CLI runs in). Any lasting failure is a reason: a version is made
 * champion only once it has been seen to load. A failure that may pass (the registry answering 503 or timing out
 * mid-download) is tried again with back-off, `attempts` times in all (default 4: about 15 s): a blip must not leave
 * a good model challenger until the next run, a week later; a registry away longer is a reason too.
 */
export async function whyUnservable(
  registry: ModelRegistry,
  name: string,
  version: number,
  retry: { attempts?: number; backoff?: { initialMs: number; maxMs: number } } = {},
): Promise<string | undefined> {
  const attempts = retry.attempts ?? 4;
  const backoff = retry.backoff ?? { initialMs: 2_000, maxMs: 8_000 };
  for (let attempt = 0; ; attempt++) {
    const cacheDir = await mkdtemp(join(tmpdir(), 'cryptocast-servable-'));
    try {
      await loadServingModel(registry, name, version, cacheDir);
      return undefined;
    } catch (err) {
      if (isPermanentLoadFailure(err) || attempt + 1 >= attempts) return (err as Error).message;
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
    await new Promise((r) => setTimeout(r, backoffDelay(attempt, backoff)));
  }
}
