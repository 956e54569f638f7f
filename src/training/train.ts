import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { columnStats } from '../inference/imputation.ts';
import { whyUnservable } from '../inference/model-holder.ts';
import { type Dataset, fingerprint } from './dataset.ts';
import { DEFAULT_GATE, decide, type GateDecision, type GatePolicy } from './gate.ts';
import {
  AliasMovedError,
  type ModelCard,
  type ModelRegistry,
  type NewModelCard,
  RegistryError,
  RegistryFileError,
} from './registry/registry.ts';
import { renderReport } from './report.ts';
import { type WalkForwardOptions, type WalkForwardRun, walkForward } from './walk-forward.ts';

/**
 * One training run: walk forward (with the champion's configuration refitted on the same folds), decide with the
 * gate, register the version with its lineage and report, check that the predictor can load it, and move the
 * aliases. Nothing touches the registry before the model and its evaluation exist, so a failed run leaves the
 * champion as it was. A version the predictor cannot load is registered as challenger, whatever the gate said (the
 * card keeps the gate's decision; the alias history and the outcome say why it was not promoted).
 */
export interface TrainOptions extends Omit<WalkForwardOptions, 'final' | 'figures' | 'champion'> {
  name: string;
  featureSets: { name: string; version: number }[];
  gate?: GatePolicy;
}

export interface TrainOutcome {
  card: ModelCard;
  run: WalkForwardRun;
  decision: GateDecision;
  /** The champion before this run. */
  previousChampion: number | undefined;
}

const ROOT = resolve(import.meta.dirname, '..', '..');

/** The git commit of the code, "+dirty" when the tree has changes; the package version outside a git checkout. */
export function codeVersion(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
    return dirty ? `${head}+dirty` : head;
  } catch {
    return `cryptocast ${process.env.npm_package_version ?? '0.1.0'}`;
  }
}

const sameParams = (a: Record<string, unknown>, b: Record<string, unknown>) =>
  JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

export async function trainAndRegister(
  ds: Dataset,
  registry: ModelRegistry,
  opts: TrainOptions,
): Promise<TrainOutcome> {
  const championVersion = await registry.alias(opts.name, 'champion');
  let championCard: ModelCard | undefined;
  /** Why the champion's card cannot be read, when it is damaged (missing, not a card). */
  let championUnreadable: string | undefined;
  if (championVersion !== undefined)
    try {
      championCard = await registry.get(opts.name, championVersion);
    } catch (err) {
      // A damaged card cannot be compared with, and its version cannot be served after a restart either: the gate
      // decides without the comparison, so that this run can replace it. Failing here, every run failed the same way
      // — and the damaged version's own hint (train a new version) could never mend it.
      if (!(err instanceof RegistryFileError)) throw err;
      championUnreadable = err.message;
    }
  // A champion that predicts another horizon or target, or serves pairs this data does not cover, cannot be compared
  // on these folds at all: the gate refuses (a person may still promote by hand).
  const incomparable = championCard === undefined ? undefined : whyIncomparable(ds, opts, championCard);
  const run = await walkForward(ds, {
    ...opts,
    final: true,
    figures: true,
    // The champion's configuration, refitted on these folds (the trainer skips it when it is the candidate's own).
    champion:
      championCard && incomparable === undefined
        ? { params: championCard.params, columns: championCard.columns }
        : undefined,
  });
  const sameConfig =
    championCard !== undefined &&
    incomparable === undefined &&
    sameParams(run.result.params, championCard.params) &&
    sameColumns(ds, championCard);
  let decision = decide(
    run.evaluation,
    opts.gate ?? DEFAULT_GATE,
    championCard
      ? { version: championCard.version, sameConfig, incomparable }
      : championUnreadable !== undefined && championVersion !== undefined
        ? { version: championVersion, sameConfig: false, unreadable: championUnreadable }
        : undefined,
    ds.pairs,
  );
  // Per day is in evaluation.json (hundreds of rows over 14 months); the card keeps folds and deciles.
  const { per_fold, per_day: _perDay, ...summary } = run.evaluation;
  const artifacts = [
    'model.json',
    'p10.json',
    'p90.json',
    'report.md',
    'evaluation.json',
    'result.json',
    ...(run.result.figures ?? []),
  ];
  const card: NewModelCard = {
    name: opts.name,
    codeVersion: codeVersion(),
    horizonMs: ds.horizonMs,
    target: 'log_return_bps',
    featureSets: opts.featureSets,
    columns: ds.columns,
    pairs: ds.pairs,
    trainingWindow: { from: ds.windowEnd[0]!, to: ds.windowEnd[ds.n - 1]! },
    datasetFingerprint: fingerprint(ds),
    params: run.result.params,
    columnStats: columnStats(ds.columns, ds.X, ds.n),
    folds: per_fold,
    summary: summary as unknown as Record<string, unknown>,
    artifacts,
    gate: decision,
  };
  let registered: Awaited<ReturnType<typeof registry.register>>;
  try {
    await writeFile(join(run.outDir, 'evaluation.json'), JSON.stringify(run.evaluation, null, 2));
    await writeFile(join(run.outDir, 'report.md'), renderReport(card, run.evaluation, decision, run.result));
    registered = await registry.register(card, run.outDir);
  } finally {
    // The registry has its own copy of the artifacts now (or nothing was registered).
    await run.cleanup();
  }
  try {
    decision = await moveAliases(registry, registered, decision, championVersion);
  } catch (err) {
    throw new AliasesNotMovedError(registered, decision, err);
  }
  return { card: registered, run, decision, previousChampion: championVersion };
}

/**
 * A run that registered its version but could not move an alias to it (the registry failing in between: a lock held,
 * MLflow away past the retries). Said as such: the registry's error alone ("registry lock … held for over 10 s") read
 * as a run that changed nothing, though a version now waits, named by no alias (`models list`: incomplete).
 */
export class AliasesNotMovedError extends RegistryError {
  override readonly name: string = 'AliasesNotMovedError';
  readonly version: number;
  constructor(registered: ModelCard, gated: GateDecision, cause: unknown) {
    const v = registered.version;
    super(
      `${registered.name} v${v} was registered, but its alias could not be moved: ${(cause as Error).message}`,
      {
        hint: gated.promoted
          ? `the gate passed it: once the registry answers, make it champion with cryptocast models promote ${v} unless cryptocast models list shows it is (MLflow may have moved the alias without recording it), or let the next run replace it`
          : 'the gate refused it: the champion is unchanged, and the next run registers another',
        cause,
      },
    );
    this.version = v;
  }
}

/**
 * Moves the aliases after a run: the champion to the new version if the gate passed it and the predictor can load it,
 * else the challenger. The gate measured the model; the predictor must also be able to load it (a news model, a file
 * damaged on its way into the registry), or once champion nobody serves it after a restart: checked on the registered
 * card and files. And the champion must still be the one the gate compared it with (`comparedWith`, read when the run
 * began): a rollback or promotion by hand during the run (minutes to an hour), or another trainer, is not overwritten
 * on the strength of a comparison with a model no longer serving. Returns the decision, with the refusal added.
 */
export async function moveAliases(
  registry: ModelRegistry,
  registered: ModelCard,
  gated: GateDecision,
  comparedWith: number | undefined,
  servableRetry?: Parameters<typeof whyUnservable>[3],
): Promise<GateDecision> {
  let decision = gated;
  const refuse = (why: string) => {
    decision = { promoted: false, reasons: [...decision.reasons, `FAIL: ${why}`] };
  };
  if (decision.promoted) {
    const unservable = await whyUnservable(registry, registered.name, registered.version, servableRetry);
    if (unservable !== undefined) refuse(`the predictor cannot serve it: ${unservable}`);
  }
  if (decision.promoted) {
    // Moved only if the champion is still the one compared with, checked by the registry as it moves the alias (the
    // local one under its lock): read first and moved after, another trainer's promotion landing in between was
    // overwritten by a model never compared with it.
    try {
      await registry.setAlias(
        registered.name,
        'champion',
        registered.version,
        `promoted by the gate (${decision.reasons.length} checks passed)`,
        { version: comparedWith },
      );
    } catch (err) {
      if (!(err instanceof AliasMovedError)) throw err;
      const v = (x: number | undefined) => (x === undefined ? 'none' : `v${x}`);
      refuse(
        `the champion changed during the run (${v(comparedWith)} → ${v(err.current)}): not compared with the one serving now (promote by hand if intended)`,
      );
    }
  }
  if (!decision.promoted)
    await registry.setAlias(
      registered.name,
      'challenger',
      registered.version,
      decision.reasons.filter((r) => r.startsWith('FAIL')).join('; '),
    );
  return decision;
}

function whyIncomparable(ds: Dataset, opts: TrainOptions, card: ModelCard): string | undefined {
  if (card.horizonMs !== ds.horizonMs)
    return `it predicts ${card.horizonMs / 60_000} minutes ahead, this model ${ds.horizonMs / 60_000}`;
  if (card.target !== 'log_return_bps') return `its target is ${card.target}`;
  const missing = card.pairs.filter((p) => !ds.pairs.includes(p));
  if (missing.length > 0) return `it serves ${missing.join(', ')}, which this data does not cover`;
  const sets = (xs: { name: string; version: number }[]) =>
    xs
      .map((x) => `${x.name} v${x.version}`)
      .sort()
      .join(', ');
  if (sets(card.featureSets) !== sets(opts.featureSets))
    return `it reads ${sets(card.featureSets)}, this model ${sets(opts.featureSets)}`;
  return undefined;
}

function sameColumns(ds: Dataset, card: ModelCard): boolean {
  return ds.columns.length === card.columns.length && ds.columns.every((c, i) => c === card.columns[i]);
}
