import { loadStreamConfig } from '../../config/config.ts';
import { setting } from '../../config/env.ts';
import { UsageError } from '../../core/errors.ts';
import { log } from '../../core/log.ts';
import { markStarted } from '../../core/readiness.ts';
import { redactSecrets } from '../../core/secrets.ts';
import { onStopSignal } from '../../core/stop-signals.ts';
import { TECHNICAL_SET } from '../../features/feature-writer.ts';
import { openFeatureStore } from '../../features/store/open.ts';
import type { FeatureStore } from '../../features/store/store.ts';
import { ChampionHolder } from '../../inference/model-holder.ts';
import { DEFAULT_MAX_STALENESS_MS } from '../../inference/predictor.ts';
import { PredictorService } from '../../inference/predictor-service.ts';
import { DEFAULT_PREDICTIONS_STORE, openPredictionsStore } from '../../inference/store/open.ts';
import { connectBus } from '../../runtime/connect.ts';
import { DEFAULT_REGISTRY, openRegistry } from '../../training/registry/open.ts';
import { DEFAULT_MODEL_NAME } from '../../training/registry/registry.ts';
import { parsePositiveDuration } from '../flags.ts';
import { openUnlessStopped, stopWhileStarting } from '../stop-while-starting.ts';

/**
 * `cryptocast service predictor`: features (topic) + the registry's champion → predictions (topic + store). Runs
 * until SIGINT/SIGTERM, then finishes its batch and commits. A SIGKILL at any moment is safe too: the restarted
 * predictor re-reads the uncommitted batch; the store upserts and the topic is not published to twice.
 *
 * `--clock event` is for replays (recorded features published faster than real time): staleness is then measured
 * against the newest windowEnd seen for the pair instead of the wall clock, which would find every vector stale.
 */
export async function predictorService(opts: {
  bus?: string;
  store?: string;
  registry?: string;
  name?: string;
  maxStaleness?: string;
  clock?: 'wall' | 'event';
  poll?: string;
  adaptiveConformal?: boolean;
  shrinkage?: boolean;
}): Promise<void> {
  const clock = opts.clock ?? 'wall';
  if (clock !== 'wall' && clock !== 'event')
    throw new UsageError(`--clock must be wall or event, got "${String(clock)}"`);
  const maxStalenessMs = parsePositiveDuration(
    '--max-staleness',
    opts.maxStaleness,
    DEFAULT_MAX_STALENESS_MS,
  );
  const pollMs = parsePositiveDuration('--poll', opts.poll, 30_000);
  const busUrl = loadStreamConfig({ bus: opts.bus }).bus;
  const registryUrl = opts.registry ?? setting('CRYPTOCAST_REGISTRY') ?? DEFAULT_REGISTRY;
  const name = opts.name ?? setting('CRYPTOCAST_MODEL_NAME') ?? DEFAULT_MODEL_NAME;
  const storeUrl = opts.store ?? setting('CRYPTOCAST_STORE') ?? DEFAULT_PREDICTIONS_STORE;

  const abort = new AbortController();
  const shutdown = (signal: string) => {
    log.info({ service: 'predictor', signal }, 'stopping');
    abort.abort();
  };
  onStopSignal(shutdown);

  const registry = await openRegistry(registryUrl);
  // A PostgreSQL that is not there yet is waited for; a stop meanwhile ends the command.
  const signal = abort.signal;
  const store = await openUnlessStopped(signal, 'predictor', () =>
    openPredictionsStore(storeUrl, { signal }),
  );
  if (!store) return registry.close();
  const holder = new ChampionHolder(registry, { name, pollMs });
  const adaptiveConformal = opts.adaptiveConformal !== false;
  // The online adjustments rebuild their state from the feature store of the same URL (where the feature writer puts
  // the vectors). A store that cannot be opened here — a DuckDB file another process holds — leaves it empty.
  let features: FeatureStore | undefined;
  if (adaptiveConformal || opts.shrinkage === true)
    features = await openFeatureStore(storeUrl, { signal }).catch((err: Error) => {
      if (!signal.aborted)
        log.warn(
          { service: 'predictor', err: redactSecrets(err.message) },
          'feature store not available: the online adjustments start empty',
        );
      return undefined;
    });
  const bus = await connectBus(busUrl);
  const svc = new PredictorService(bus, holder, store, {
    maxStalenessMs,
    clock,
    adaptiveConformal,
    shrinkage: opts.shrinkage === true,
    history: features && ((pair, from, to) => features.history(TECHNICAL_SET, pair, from, to)),
  });
  const starting = stopWhileStarting(abort.signal, bus);
  try {
    const started = await starting.start('predictor', async () => {
      await holder.start();
      await svc.start();
    });
    if (!started) return;
    markStarted();
    log.info(
      {
        service: 'predictor',
        bus: busUrl,
        registry: registry.location,
        model: name,
        champion: holder.current()?.card.version ?? null,
        store: store.kind,
        clock,
        maxStalenessMs,
        pollMs,
        band: adaptiveConformal ? 'adaptive conformal' : 'model',
        shrinkage: opts.shrinkage === true,
      },
      'running',
    );
    const timer = setInterval(
      () =>
        log.info(
          { service: 'predictor', champion: holder.current()?.card.version ?? null, ...svc.stats },
          'progress',
        ),
      10_000,
    );
    if (!abort.signal.aborted)
      await new Promise<void>((resolve) =>
        abort.signal.addEventListener('abort', () => resolve(), { once: true }),
      );
    clearInterval(timer);
    await svc.stop();
    log.info({ service: 'predictor', ...svc.stats }, 'stopped');
  } finally {
    holder.stop();
    await bus.close();
    await store.close();
    await features?.close();
    await registry.close();
  }
}
