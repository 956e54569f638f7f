import { parseDuration } from '../../config/config.ts';
import { setting } from '../../config/env.ts';
import { ERR, fail, UsageError } from '../../core/errors.ts';
import { log } from '../../core/log.ts';
import { markStarted } from '../../core/readiness.ts';
import { urlWithoutCredentials } from '../../core/secrets.ts';
import { onStopSignal } from '../../core/stop-signals.ts';
import { NEWS_SET, TECHNICAL_SET } from '../../features/feature-writer.ts';
import { openFeatureStore } from '../../features/store/open.ts';
import { checkDataset } from '../../training/dataset.ts';
import { DEFAULT_REGISTRY, openRegistry, TRAINING_REGISTRY } from '../../training/registry/open.ts';
import { DEFAULT_MODEL_NAME, finishedVersions, type ModelCard } from '../../training/registry/registry.ts';
import { datasetFromStoreWindow, parsePairs } from '../../training/sources.ts';
import { AliasesNotMovedError, trainAndRegister } from '../../training/train.ts';
import {
  MIN_TRAINER_EVERY_MS,
  TRAINER_DAYS,
  TRAINER_EVERY,
  TrainerService,
  TUNE_SECONDS,
} from '../../training/trainer-service.ts';
import { wholeNumber } from '../flags.ts';

/**
 * `cryptocast service trainer`: retrains from the feature store on a schedule (`--every`, default 7d) on the latest
 * `--days` (default 365), and on demand (SIGHUP); `--once` runs once and exits (for a Kubernetes CronJob). The first
 * run waits until `--every` after the newest registered version (`--now`: at once). Each
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
  now?: boolean;
}): Promise<void> {
  const everyMs = parseDuration(opts.every ?? TRAINER_EVERY, '--every');
  // A retrain takes minutes: a schedule tighter than a minute is a typo (0s, 7 for 7d), not a wish.
  if (everyMs < MIN_TRAINER_EVERY_MS)
    throw new UsageError(`--every must be at least 1m (got "${opts.every}"): a retrain takes minutes`);
  const days = wholeNumber('days', opts.days ?? TRAINER_DAYS, 1);
  const horizonMs = parseDuration(opts.horizon ?? '5m', '--horizon');
  const tuneSeconds = wholeNumber('tune-seconds', opts.tuneSeconds ?? TUNE_SECONDS);
  const folds = Number(opts.folds ?? '5');
  const registryUrl = opts.registry ?? setting('CRYPTOCAST_REGISTRY') ?? DEFAULT_REGISTRY;
  const servedName = setting('CRYPTOCAST_MODEL_NAME') ?? DEFAULT_MODEL_NAME;
  const name = opts.name ?? servedName;
  // The predictor serves technical features only: the gate refuses to promote a model trained with the news columns,
  // so under the served name every run fitted for nothing and the champion was never refreshed. Under a name of its
  // own a news model is a deliberate challenger (compared, never served): allowed.
  if (opts.withNews && name === servedName)
    throw new UsageError(
      `--with-news registers news models under "${name}", the model the predictor serves, which serves technical ` +
        'features only: every run would be refused promotion and the champion never refreshed. Drop --with-news, ' +
        'or keep news models apart under another --name (e.g. --name news-research; or offline: cryptocast train ' +
        '--store … --with-news --name news-research)',
    );
  const featureSets = [TECHNICAL_SET, ...(opts.withNews ? [NEWS_SET] : [])].map((s) => ({
    name: s.name,
    version: s.version,
  }));

  // The service's stop. A run still waiting for its PostgreSQL gives up, and so does a run whose fit is under way: its
  // Python process is ended and its work folder removed (nothing registered yet, the champion unchanged). A weekly fit
  // on 365 days takes minutes, longer than any grace period (compose: 45 s), so waiting for it ended in a SIGKILL,
  // or a second signal that exited and left the fit running. A run past its fit (registering, moving the aliases:
  // seconds) is finished first.
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
    // Its requests ride out a restart of MLflow (the fit is done by the time most come), until the service stops.
    const registry = await openRegistry(registryUrl, { ...TRAINING_REGISTRY, signal: stop.signal });
    try {
      const out = await trainAndRegister(ds, registry, {
        name,
        featureSets,
        folds,
        mode: 'expanding',
        tune: tuneSeconds > 0 ? { seconds: tuneSeconds, trials: 200 } : undefined,
        signal: stop.signal,
      });
      return { version: out.card.version, promoted: out.decision.promoted, reasons: out.decision.reasons };
    } finally {
      await registry.close();
    }
  };

  if (opts.once) {
    // A stop ends the fit as in the service (a Job past its deadline, Ctrl-C). Without a handler here Node died of the
    // signal at once, leaving the fit's process running and its work folder (the dataset) behind — or, as a
    // container's PID 1, ignored SIGTERM until the SIGKILL.
    const off = onStopSignal(() => stop.abort());
    try {
      const r = await retrain('once');
      log.info({ service: 'trainer', ...r }, r.promoted ? 'promoted' : 'not promoted');
    } catch (err) {
      if (stop.signal.aborted && !(err instanceof AliasesNotMovedError))
        throw fail(
          ERR.INTERRUPTED,
          'interrupted: the trainer was stopped before it registered anything and its work folder removed',
          { cause: err },
        );
      throw err;
    } finally {
      off();
    }
    return;
  }
  // The schedule is kept in the registry, not in this process: the first run comes `--every` after the newest
  // registered version (so a restart, or a crash loop, does not retrain at once), unless --now asks for it.
  const lastRegistered = opts.now ? undefined : await newestRegistered(registryUrl, name);
  const svc = new TrainerService(retrain, {
    everyMs,
    lastRegisteredAt: lastRegistered?.createdAt,
    onRun: (r, reason) =>
      log.info({ service: 'trainer', reason, ...r }, r.promoted ? 'promoted' : 'not promoted'),
    onError: (err, reason) =>
      stop.signal.aborted && !(err instanceof AliasesNotMovedError)
        ? log.info(
            { service: 'trainer', reason },
            'stopped while waiting for the feature store, or while fitting: nothing was registered',
          )
        : log.error(
            {
              service: 'trainer',
              reason,
              err: err.message,
              ...(err instanceof AliasesNotMovedError ? { version: err.version, hint: err.hint } : {}),
            },
            // Not "the champion is unchanged": a registry failing after it moved the alias (MLflow's history tag)
            // ends a run here too; the error says which.
            'training failed (see err for where: before registering, the champion is unchanged)',
          ),
  });
  svc.start();
  markStarted();
  const firstRunInMs = svc.firstRunDelayMs();
  log.info(
    {
      service: 'trainer',
      lastVersion: lastRegistered?.version ?? null,
      lastRegisteredAt: lastRegistered ? new Date(lastRegistered.createdAt).toISOString() : null,
      firstRunAt: new Date(Date.now() + firstRunInMs).toISOString(),
    },
    opts.now
      ? 'first run now (--now)'
      : lastRegistered === undefined
        ? 'first run now: nothing registered yet'
        : firstRunInMs === 0
          ? `first run now: v${lastRegistered.version} was registered over --every ago`
          : `first run in ${formatDuration(firstRunInMs)}: --every after v${lastRegistered.version} was registered (--now runs at once)`,
  );
  log.info(
    {
      service: 'trainer',
      store: urlWithoutCredentials(opts.store),
      registry: urlWithoutCredentials(registryUrl),
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
  log.info(
    { service: 'trainer' },
    'stopping (a fit in progress is abandoned; a run registering is finished first)',
  );
  stop.abort();
  await svc.stop();
}

/**
 * The newest registered version of `name` whose run finished (its number and creation time), or undefined when there
 * is none. A run finishes by moving an alias to its version (champion or challenger), so a version no alias names now
 * or ever named was registered by a run stopped in between (a SIGKILL, an OOM): like a run that failed before
 * registering, it does not put the next run off by `--every` — else a model its gate passed waited a week unpromoted,
 * the champion unrefreshed. A registry that cannot be read now is logged and taken as none: the first run starts at
 * once, as before the schedule was kept, and itself fails (leaving the champion as it is) if the registry is still away.
 */
async function newestRegistered(
  registryUrl: string,
  name: string,
): Promise<{ version: number; createdAt: number } | undefined> {
  try {
    const registry = await openRegistry(registryUrl);
    try {
      const cards = await registry.list(name);
      const aliased = await finishedVersions(registry, name);
      const newest = (finished: boolean) =>
        cards
          .filter((c) => aliased.has(c.version) === finished)
          .reduce<ModelCard | undefined>(
            (a, c) => (a === undefined || c.createdAt > a.createdAt ? c : a),
            undefined,
          );
      const lastFinished = newest(true);
      const lastUnfinished = newest(false);
      if (lastUnfinished !== undefined && lastUnfinished.createdAt > (lastFinished?.createdAt ?? -Infinity))
        log.warn(
          { service: 'trainer', version: lastUnfinished.version, model: name },
          `v${lastUnfinished.version} was registered but no alias names it (its run was stopped before it moved one): ` +
            'it does not count for the schedule',
        );
      return lastFinished && { version: lastFinished.version, createdAt: lastFinished.createdAt };
    } finally {
      await registry.close();
    }
  } catch (err) {
    log.warn(
      { service: 'trainer', registry: urlWithoutCredentials(registryUrl), err: (err as Error).message },
      'cannot read the registry for the newest version: the first run starts now',
    );
    return undefined;
  }
}

/** A duration for a log line: 5d 3h, 2h 10m, 45m, 30s. */
function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const [d, h, m] = [Math.floor(s / 86_400), Math.floor((s % 86_400) / 3600), Math.floor((s % 3600) / 60)];
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return m > 0 ? `${m}m` : `${s}s`;
}
