import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { log } from '../../core/log.ts';
import { MlflowClient } from './mlflow-client.ts';
import {
  type Alias,
  type AliasChange,
  AliasMovedError,
  MODEL_NAME,
  type ModelCard,
  ModelCardSchema,
  type ModelRegistry,
  type NewModelCard,
  noSuchVersion,
  RegistryError,
  RegistryFileError,
} from './registry.ts';

/**
 * The registry on an MLflow tracking server (MLflow 3, REST API only, Node's fetch; scripts/mlflow.sh runs one):
 *
 *   registered model <name>                  one per model name; what the MLflow UI lists under "Models"
 *     version <n>                            MLflow numbers them 1, 2, 3, … per model, also under concurrency
 *       ← run in experiment "cryptocast"     params, metrics (summary; per-fold with step = fold), lineage tags
 *           artifacts/card.json + files      uploaded through the server's artifact proxy (mlflow-artifacts)
 *     aliases champion / challenger          MLflow's own model aliases
 *     tags cryptocast.alias_change.<key>     the alias history: one tag (JSON) per change, keys sort by time
 *
 * A version is created only once its run holds every artifact and card.json, so every version has its card; the
 * card's `version` is always MLflow's number. Alias changes are not serialised across processes (MLflow has no
 * lock): two promotions of the same model at the same instant could both record the same `previous`, and a
 * conditional change (`ifCurrent`) is checked by a read just before the move, not atomically with it.
 */
const ALIAS_CHANGE_TAG = 'cryptocast.alias_change.';
/** MLflow's SQL stores keep registered-model tag values in a VARCHAR(5000). */
const MAX_MODEL_TAG_VALUE = 5000;
const MAX_RUN_TAG_VALUE = 5000;
const MAX_PARAM_VALUE = 6000;

export interface MlflowRegistryOptions {
  /** The experiment that holds the runs (created if missing). */
  experiment?: string;
  /** Per-request timeout; artifact transfers get four times as long. */
  timeoutMs?: number;
  /** How long a request that finds MLflow away is tried again (MlflowClientOptions.retryForMs). Default 0. */
  retryForMs?: number;
  /** Ends the trying again (MlflowClientOptions.signal). */
  signal?: AbortSignal;
}

interface RunInfo {
  run_id: string;
  experiment_id: string;
  artifact_uri: string;
}
interface ModelVersion {
  name: string;
  version: string;
  source: string;
  run_id?: string;
}
interface Tag {
  key: string;
  value?: string;
}

let aliasChangeSeq = 0;

export class MlflowRegistry implements ModelRegistry {
  readonly kind = 'mlflow' as const;
  readonly location: string;
  private readonly client: MlflowClient;
  private readonly experimentName: string;
  private experimentId: Promise<string> | undefined;
  private readonly models = new Map<string, Promise<void>>();

  constructor(baseUrl: string, options: MlflowRegistryOptions = {}) {
    this.client = new MlflowClient(baseUrl, options);
    this.location = `mlflow+${this.client.base}`;
    this.experimentName = options.experiment ?? 'cryptocast';
  }

  private artifactPath(uri: string): string {
    return this.client.artifactPath(uri, this.experimentName);
  }

  // --- experiment, registered model ---------------------------------------------------------------------------

  private experiment(): Promise<string> {
    this.experimentId ??= this.client.experimentId(this.experimentName);
    this.experimentId.catch(() => {
      this.experimentId = undefined;
    });
    return this.experimentId;
  }

  private ensureModel(name: string): Promise<void> {
    let p = this.models.get(name);
    if (!p) {
      p = this.client.ensureRegisteredModel(
        name,
        'A cryptocast price model (registered by cryptocast; aliases champion and challenger).',
        [{ key: 'cryptocast.managed', value: 'true' }],
      );
      this.models.set(name, p);
      p.catch(() => this.models.delete(name));
    }
    return p;
  }

  private check(name: string): void {
    if (!MODEL_NAME.test(name)) throw new RegistryError(`bad model name "${name}"`);
  }

  // --- ModelRegistry --------------------------------------------------------------------------------------------

  async register(card: NewModelCard, artifactsDir: string): Promise<ModelCard> {
    this.check(card.name);
    const files: [string, Uint8Array][] = [];
    for (const f of card.artifacts) {
      if (f.includes('/') || f.startsWith('.') || f === 'card.json')
        throw new RegistryError(`artifact names are plain file names other than card.json: ${f}`);
      files.push([f, await readFile(join(artifactsDir, f))]);
    }
    const createdAt = Date.now();
    // Validated now, with a placeholder version, so that a bad card fails before anything is created.
    const draft = ModelCardSchema.parse({ ...card, version: 1, createdAt });
    const [experimentId] = await Promise.all([this.experiment(), this.ensureModel(card.name)]);
    const { run } = await this.client.api<{ run: { info: RunInfo } }>('POST', 'runs/create', {
      experiment_id: experimentId,
      run_name: `${card.name}-${new Date(createdAt).toISOString().replace(/[:.]/g, '-')}`,
      start_time: createdAt,
      tags: runTags(card),
    });
    const runId = run.info.run_id;
    try {
      await this.logBatch(runId, card, createdAt);
      const root = this.artifactPath(run.info.artifact_uri);
      for (const [f, data] of files) await this.client.upload(root, f, data);
      // The card before MLflow numbered it (version 0 = not known yet); rewritten with the number below. Readers
      // take the number from MLflow, so a version whose rewrite failed still reads right.
      const cardBytes = (c: object) => new TextEncoder().encode(`${JSON.stringify(c, null, 2)}\n`);
      await this.client.upload(root, 'card.json', cardBytes({ ...draft, version: 0 }));
      const { model_version: mv } = await this.client.api<{ model_version: ModelVersion }>(
        'POST',
        'model-versions/create',
        {
          name: card.name,
          source: run.info.artifact_uri,
          run_id: runId,
          description: describe(card),
          tags: [
            { key: 'cryptocast.dataset_fingerprint', value: card.datasetFingerprint },
            { key: 'cryptocast.code_version', value: card.codeVersion },
            { key: 'cryptocast.horizon_ms', value: String(card.horizonMs) },
          ],
        },
      );
      const full = ModelCardSchema.parse({ ...draft, version: Number(mv.version) });
      // The version exists from here, readable (its number comes from MLflow): what follows only decorates it. A
      // failure now is said and the version returned, so that the run goes on to set its alias — thrown, it left
      // a registered version that no alias would ever name, and a run marked FAILED.
      try {
        await this.client.upload(root, 'card.json', cardBytes(full));
        await this.client.api('POST', 'runs/set-tag', {
          run_id: runId,
          key: 'cryptocast.model_version',
          value: `${card.name}/${mv.version}`,
        });
        await this.client.api('POST', 'runs/update', {
          run_id: runId,
          status: 'FINISHED',
          end_time: Date.now(),
        });
      } catch (err) {
        log.warn(
          { registry: this.location, model: card.name, version: full.version, err: (err as Error).message },
          'registered; its run could not be finished (card number, tag or status): the version reads right',
        );
      }
      return full;
    } catch (err) {
      await this.client
        .api('POST', 'runs/update', { run_id: runId, status: 'FAILED', end_time: Date.now() })
        .catch(() => {});
      throw err;
    }
  }

  private async logBatch(runId: string, card: NewModelCard, at: number): Promise<void> {
    const params = Object.entries(card.params).map(([k, v]) => ({
      key: cleanKey(k),
      value: (typeof v === 'string' ? v : (JSON.stringify(v) ?? 'null')).slice(0, MAX_PARAM_VALUE),
    }));
    const metrics: { key: string; value: number; timestamp: number; step: number }[] = [];
    for (const [k, v] of flattenNumbers(card.summary))
      metrics.push({ key: cleanKey(`summary.${k}`), value: v, timestamp: at, step: 0 });
    for (const f of card.folds)
      for (const [predictor, ms] of Object.entries(f.metrics))
        for (const [m, v] of Object.entries(ms))
          if (typeof v === 'number' && Number.isFinite(v))
            metrics.push({ key: cleanKey(`fold.${predictor}.${m}`), value: v, timestamp: at, step: f.fold });
    // MLflow's limits per log-batch call: 100 params, 1000 metrics, 1000 entries in all.
    for (let i = 0; i < params.length; i += 100)
      await this.client.api('POST', 'runs/log-batch', { run_id: runId, params: params.slice(i, i + 100) });
    for (let i = 0; i < metrics.length; i += 1000)
      await this.client.api('POST', 'runs/log-batch', { run_id: runId, metrics: metrics.slice(i, i + 1000) });
  }

  private async version(name: string, version: number): Promise<ModelVersion | undefined> {
    this.check(name);
    if (!Number.isInteger(version) || version < 1) return undefined;
    const got = await this.client.maybe<{ model_version: ModelVersion }>('GET', 'model-versions/get', {
      name,
      version: String(version),
    });
    return got?.model_version;
  }

  /**
   * A version's card. One missing or unreadable is a damaged version (RegistryFileError, as for its artifacts and as
   * in the local registry): it will never load, so the predictor stops waiting for it. As a plain RegistryError it
   * read as "MLflow away": a predictor starting on such a champion held its features for ever, retrying.
   */
  private async cardOf(mv: ModelVersion): Promise<ModelCard> {
    const bytes = await this.client.fetchArtifact(this.artifactPath(mv.source), 'card.json');
    const where = `${mv.name} version ${mv.version} in MLflow`;
    if (!bytes)
      throw new RegistryFileError(
        `${where} has no card.json at ${mv.source} (not registered by cryptocast, or its card was deleted)`,
        { hint: DAMAGED_VERSION_HINT },
      );
    try {
      const stored = JSON.parse(new TextDecoder().decode(bytes)) as object;
      return ModelCardSchema.parse({ ...stored, version: Number(mv.version) });
    } catch (err) {
      const why = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 300);
      throw new RegistryFileError(`${where}: card.json at ${mv.source} is not a model card (${why})`, {
        hint: DAMAGED_VERSION_HINT,
        cause: err,
      });
    }
  }

  async get(name: string, version: number): Promise<ModelCard | undefined> {
    const mv = await this.version(name, version);
    return mv ? this.cardOf(mv) : undefined;
  }

  async list(name: string): Promise<ModelCard[]> {
    this.check(name);
    const versions: ModelVersion[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.client.api<{ model_versions?: ModelVersion[]; next_page_token?: string }>(
        'GET',
        'model-versions/search',
        { filter: `name='${name}'`, max_results: 1000, page_token: pageToken },
      );
      versions.push(...(page.model_versions ?? []));
      pageToken = page.next_page_token || undefined;
    } while (pageToken);
    versions.sort((a, b) => Number(a.version) - Number(b.version));
    const out: ModelCard[] = [];
    for (const mv of versions) out.push(await this.cardOf(mv));
    return out;
  }

  async alias(name: string, alias: Alias): Promise<number | undefined> {
    this.check(name);
    // From the registered model's alias list: GET registered-models/alias answers a missing alias with a 400
    // (INVALID_PARAMETER_VALUE), indistinguishable from a bad request.
    const got = await this.client.maybe<{
      registered_model: { aliases?: { alias: string; version: string }[] };
    }>('GET', 'registered-models/get', { name });
    const a = got?.registered_model.aliases?.find((x) => x.alias === alias);
    return a ? Number(a.version) : undefined;
  }

  async setAlias(
    name: string,
    alias: Alias,
    version: number,
    reason: string,
    ifCurrent?: { version: number | undefined },
  ): Promise<void> {
    if ((await this.version(name, version)) === undefined) throw noSuchVersion(name, version);
    const previous = (await this.alias(name, alias)) ?? null;
    // Read right before the move: MLflow has no compare-and-set, so a change landing in between is not seen.
    if (ifCurrent !== undefined && (previous ?? undefined) !== ifCurrent.version)
      throw new AliasMovedError(name, alias, ifCurrent.version, previous ?? undefined);
    await this.client.api('POST', 'registered-models/alias', { name, alias, version: String(version) });
    const change: AliasChange = { alias, version, previous, at: Date.now(), reason };
    let value = JSON.stringify(change);
    if (value.length > MAX_MODEL_TAG_VALUE) {
      const cut = value.length - MAX_MODEL_TAG_VALUE + 20;
      value = JSON.stringify({ ...change, reason: `${reason.slice(0, reason.length - cut)} …(cut)` });
    }
    // Keys sort by time, then by a counter for changes in the same millisecond, then at random across processes.
    const key = `${ALIAS_CHANGE_TAG}${String(change.at).padStart(15, '0')}-${String(++aliasChangeSeq).padStart(6, '0')}-${randomUUID().slice(0, 8)}`;
    try {
      await this.client.api('POST', 'registered-models/set-tag', { name, key, value });
    } catch (err) {
      throw new RegistryError(
        `${name}: ${alias} now points to version ${version}, but the change could not be recorded in the alias ` +
          `history: ${(err as Error).message}`,
      );
    }
  }

  async aliasHistory(name: string): Promise<AliasChange[]> {
    this.check(name);
    const got = await this.client.maybe<{ registered_model: { tags?: Tag[] } }>(
      'GET',
      'registered-models/get',
      {
        name,
      },
    );
    return (got?.registered_model.tags ?? [])
      .filter((t) => t.key.startsWith(ALIAS_CHANGE_TAG))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map((t) => JSON.parse(t.value ?? '{}') as AliasChange);
  }

  async download(name: string, version: number, dir: string): Promise<Record<string, string>> {
    const mv = await this.version(name, version);
    if (mv === undefined) throw noSuchVersion(name, version);
    const card = await this.cardOf(mv);
    const root = this.artifactPath(mv.source);
    await mkdir(dir, { recursive: true });
    const out: Record<string, string> = {};
    for (const f of card.artifacts) {
      const data = await this.client.fetchArtifact(root, f);
      // Damaged, not away: the version will never load (the predictor stops waiting for it).
      if (!data)
        throw new RegistryFileError(`${name} version ${version}: artifact ${f} is missing in MLflow`, {
          hint: DAMAGED_VERSION_HINT,
        });
      out[f] = join(dir, f);
      await writeFile(out[f], data);
    }
    return out;
  }

  async close(): Promise<void> {}
}

/** What to do about a version whose card or files are damaged in MLflow (the registry is left as it is). */
const DAMAGED_VERSION_HINT =
  'the version is damaged and was not changed: register a new version (cryptocast train, or the trainer), or ' +
  'promote another one (cryptocast models list)';

/** MLflow keys: alphanumerics, underscores, dashes, periods, spaces, colons and slashes; at most 250 characters. */
function cleanKey(k: string): string {
  return k.replace(/[^\w.\- :/]/g, '_').slice(0, 250) || '_';
}

function flattenNumbers(o: Record<string, unknown>, prefix = ''): [string, number][] {
  const out: [string, number][] = [];
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === 'number' && Number.isFinite(v)) out.push([`${prefix}${k}`, v]);
    else if (v && typeof v === 'object' && !Array.isArray(v))
      out.push(...flattenNumbers(v as Record<string, unknown>, `${prefix}${k}.`));
  }
  return out;
}

function runTags(card: NewModelCard): Tag[] {
  const t = (key: string, value: unknown): Tag => ({
    key,
    value: (typeof value === 'string' ? value : JSON.stringify(value)).slice(0, MAX_RUN_TAG_VALUE),
  });
  return [
    t('mlflow.source.git.commit', card.codeVersion),
    t('cryptocast.model', card.name),
    t('cryptocast.target', card.target),
    t('cryptocast.horizon_ms', String(card.horizonMs)),
    t('cryptocast.pairs', card.pairs.join(',')),
    t('cryptocast.feature_sets', card.featureSets.map((f) => `${f.name}@${f.version}`).join(',')),
    t('cryptocast.columns', card.columns.join(',')),
    t('cryptocast.training_window', card.trainingWindow),
    t('cryptocast.dataset_fingerprint', card.datasetFingerprint),
    ...(card.gate ? [t('cryptocast.gate', card.gate)] : []),
  ];
}

function describe(card: NewModelCard): string {
  const gate = card.gate
    ? `gate: ${card.gate.promoted ? 'promoted' : 'not promoted'} (${card.gate.reasons.join('; ')})`
    : 'no gate decision';
  return `Predicts ${card.target} ${card.horizonMs / 1000} s ahead for ${card.pairs.join(', ')}; ${gate}.`.slice(
    0,
    4000,
  );
}
