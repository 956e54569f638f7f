import { parseDuration } from '../../config/config.ts';
import { setting } from '../../config/env.ts';
import { UsageError } from '../../core/errors.ts';
import { log } from '../../core/log.ts';
import { markStarted } from '../../core/readiness.ts';
import { onStopSignal } from '../../core/stop-signals.ts';
import { NEWS_SET, TECHNICAL_SET } from '../../features/feature-writer.ts';
import { openFeatureStore } from '../../features/store/open.ts';
import { checkDataset } from '../../training/dataset.ts';
import { DEFAULT_REGISTRY, openRegistry } from '../../training/registry/open.ts';
import { DEFAULT_MODEL_NAME } from '../../training/registry/registry.ts';
import { datasetFromStoreWindow, parsePairs } from '../../training/sources.ts';
import { trainAndRegister } from '../../training/train.ts';
import {
  MIN_TRAINER_EVERY_MS,
  TRAINER_DAYS,
  TRAINER_EVERY,
  TrainerService,
  TUNE_SECONDS,
} from '../../training/trainer-service.ts';

/**
 * `cryptocast service trainer`: retrains from the feature store on a schedule (`--every`, default 7d) on the latest
 * `--days` (default 365), and on demand (SIGHUP); `--once` runs once and exits (for a Kubernetes CronJob). Each
 * run goes through the promotion gate; a failed run leaves the champion untouched.
 */
export async function trainerService(opts: {
  store: string;
  registry?: string;
  name?: string;
  every?: string;
  days?: string;
  pairs?: string;
  withNews?: boolean;
  tuneSeconds?: string;
  horizon?: string;
  folds?: string;
  once?: boolean;
}): Promise<void> {
  const everyMs = parseDuration(opts.every ?? TRAINER_EVERY, '--every');
  // A retrain takes minutes: a schedule tighter than a minute is a typo (0s, 7 for 7d), not a wish.
  if (everyMs < MIN_TRAINER_EVERY_MS)
    throw new UsageError(`--every must be at least 1m (got "${opts.every}"): a retrain takes minutes`);
  const days = Number(opts.days ?? TRAINER_DAYS);
  if (!(days > 0)) throw new UsageError(`--days must be a positive number, got "${opts.days}"`);
  const horizonMs = parseDuration(opts.horizon ?? '5m', '--horizon');
  const tuneSeconds = Number(opts.tuneSeconds ?? TUNE_SECONDS);
  const folds = Number(opts.folds ?? '5');
  const registryUrl = opts.registry ?? setting('CRYPTOCAST_REGISTRY') ?? DEFAULT_REGISTRY;
  const name = opts.name ?? setting('CRYPTOCAST_MODEL_NAME') ?? DEFAULT_MODEL_NAME;
  const featureSets = [TECHNICAL_SET, ...(opts.withNews ? [NEWS_SET] : [])].map((s) => ({
    name: s.name,
    version: s.version,
  }));

  // The service's stop. A run still waiting for its PostgreSQL gives up (nothing read yet, the champion unchanged);
  // a run that is training is finished first.
  const stop = new AbortController();
  const retrain = async (reason: string) => {
    const store = await openFeatureStore(opts.store, { signal: stop.signal });
    let source: Awaited<ReturnType<typeof datasetFromStoreWindow>>;
    try {
      source = await datasetFromStoreWindow(store, {
        horizonMs,
        days,
        pairs: parsePairs(opts.pairs),
        withNews: opts.withNews,
      });
    } finally {
      await store.close();
    }
    const ds = source.dataset;
    for (const w of checkDataset(ds, 2_000)) log.warn({ service: 'trainer' }, w);
    log.info({ service: 'trainer', reason, rows: ds.n, pairs: ds.pairs, days }, 'training');
    const registry = await openRegistry(registryUrl);
    try {
      const out = await trainAndRegister(ds, registry, {
        name,
        featureSets,
        folds,
        mode: 'expanding',
        tune: tuneSeconds > 0 ? { seconds: tuneSeconds, trials: 200 } : undefined,
      });
      return { version: out.card.version, promoted: out.decision.promoted, reasons: out.decision.reasons };
    } finally {
      await registry.close();
    }
  };

  if (opts.once) {
    const r = await retrain('once');
    log.info({ service: 'trainer', ...r }, r.promoted ? 'promoted' : 'not promoted');
    return;
  }
  const svc = new TrainerService(retrain, {
    everyMs,
    onRun: (r, reason) =>
      log.info({ service: 'trainer', reason, ...r }, r.promoted ? 'promoted' : 'not promoted'),
    onError: (err, reason) =>
      stop.signal.aborted
        ? log.info({ service: 'trainer', reason }, 'stopped while waiting for the feature store')
        : log.error(
            { service: 'trainer', reason, err: err.message },
            'training failed; the champion is unchanged',
          ),
  });
  svc.start();
  markStarted();
  log.info(
    {
      service: 'trainer',
      store: opts.store.replace(/:[^:@/]+@/, ':[redacted]@'),
      registry: registryUrl,
      everyMs,
      days,
    },
    'running',
  );
  process.on('SIGHUP', () => {
    log.info({ service: 'trainer' }, 'retrain requested (SIGHUP)');
    svc.requestNow('SIGHUP');
  });
  await new Promise<void>((resolve) => {
    onStopSignal(() => resolve());
  });
  log.info({ service: 'trainer' }, 'stopping (a run in progress is finished first)');
  stop.abort();
  await svc.stop();
}
