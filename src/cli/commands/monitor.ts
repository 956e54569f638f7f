import { loadStreamConfig } from '../../config/config.ts';
import { UsageError } from '../../core/errors.ts';
import { log } from '../../core/log.ts';
import { markStarted } from '../../core/readiness.ts';
import { DEFAULT_PREDICTIONS_STORE } from '../../inference/store/open.ts';
import { MonitorService } from '../../monitoring/monitor-service.ts';
import { openErrorsStore } from '../../monitoring/store/open.ts';
import { connectBus } from '../../runtime/connect.ts';

/**
 * `cryptocast service monitor`: candles + predictions (topics) → an error record per prediction at maturity →
 * `predictions.errors` (topic) and the errors store, and the rolling quality. Runs until SIGINT/SIGTERM; a SIGKILL
 * at any moment is safe (see MonitorService's commit protocol). One instance: the join keeps every pair's state.
 */
export async function monitorService(opts: {
  bus?: string;
  store?: string;
  clock?: 'wall' | 'event';
}): Promise<void> {
  const clock = opts.clock ?? 'wall';
  if (clock !== 'wall' && clock !== 'event')
    throw new UsageError(`--clock must be wall or event, got "${String(clock)}"`);
  const busUrl = loadStreamConfig({ bus: opts.bus }).bus;
  const storeUrl = opts.store ?? process.env.CRYPTOCAST_STORE ?? DEFAULT_PREDICTIONS_STORE;
  const abort = new AbortController();
  process.once('SIGINT', () => abort.abort());
  process.once('SIGTERM', () => abort.abort());
  const store = await openErrorsStore(storeUrl);
  const bus = await connectBus(busUrl);
  const svc = new MonitorService(bus, store, { clock });
  try {
    await svc.start();
    markStarted();
    log.info({ service: 'monitor', bus: busUrl, store: store.kind, clock }, 'running');
    const timer = setInterval(
      () =>
        log.info(
          { service: 'monitor', ...svc.stats, ...svc.join.stats, waiting: svc.join.pendingCount() },
          'progress',
        ),
      10_000,
    );
    await new Promise<void>((resolve) =>
      abort.signal.addEventListener('abort', () => resolve(), { once: true }),
    );
    clearInterval(timer);
    log.info({ service: 'monitor' }, 'stopping');
  } finally {
    await svc.stop();
    await bus.close();
    await store.close();
  }
}
