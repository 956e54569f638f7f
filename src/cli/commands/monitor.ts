import { championCard } from '../../api/api-service.ts';
import { openCandleFirstEmissionsTable, openCandlesTable } from '../../candles/store/candles-table.ts';
import { loadStreamConfig } from '../../config/config.ts';
import { setting } from '../../config/env.ts';
import { UsageError } from '../../core/errors.ts';
import { log } from '../../core/log.ts';
import { markStarted } from '../../core/readiness.ts';
import { onStopSignal } from '../../core/stop-signals.ts';
import { DEFAULT_PREDICTIONS_STORE } from '../../inference/store/open.ts';
import { AlertDelivery } from '../../monitoring/alerts/delivery.ts';
import { AlertEngine } from '../../monitoring/alerts/engine.ts';
import { channelsFromEnv } from '../../monitoring/alerts/notifiers.ts';
import { type AlertRulesSetting, defaultRules, loadRules } from '../../monitoring/alerts/rules.ts';
import { MonitorService } from '../../monitoring/monitor-service.ts';
import { openErrorsStore } from '../../monitoring/store/open.ts';
import { connectBus } from '../../runtime/connect.ts';
import { openAll } from '../../stores/open.ts';
import { DEFAULT_REGISTRY, openRegistry } from '../../training/registry/open.ts';
import { DEFAULT_MODEL_NAME } from '../../training/registry/registry.ts';
import { openUnlessStopped, stopWhileStarting } from '../stop-while-starting.ts';

/**
 * `cryptocast service monitor`: candles + predictions (topics) → an error record per prediction at maturity →
 * `predictions.errors` (topic) and the errors store, and the rolling quality. Runs until SIGINT/SIGTERM; a SIGKILL
 * at any moment is safe (see MonitorService's commit protocol). One instance: the join keeps every pair's state.
 */
export async function monitorService(opts: {
  bus?: string;
  store?: string;
  clock?: 'wall' | 'event';
  alertRules?: string;
  /** Where the rules file was named: the flag, or CRYPTOCAST_ALERT_RULES (service-commands.ts). */
  alertRulesSetting?: AlertRulesSetting;
  registry?: string;
  name?: string;
  latePolicy?: string;
}): Promise<void> {
  const clock = opts.clock ?? 'wall';
  if (clock !== 'wall' && clock !== 'event')
    throw new UsageError(`--clock must be wall or event, got "${String(clock)}"`);
  // The late policy is the candle stage's (`service candles --late-policy`, the chart's market.latePolicy): under
  // revise the monitor keeps each minute's first emission beside its latest revision, so a close read back from the
  // store after a restart (`forgottenCloses`) is the one a monitor that never stopped judged by.
  const { bus: busUrl, latePolicy } = loadStreamConfig({ bus: opts.bus, latePolicy: opts.latePolicy });
  const storeUrl = opts.store ?? setting('CRYPTOCAST_STORE') ?? DEFAULT_PREDICTIONS_STORE;
  const stopTimeoutMs = setting('CRYPTOCAST_MONITOR_STOP_TIMEOUT_MS');
  const abort = new AbortController();
  onStopSignal(() => abort.abort());
  // Rules are checked before anything opens: a bad file fails at start with its line and the fix.
  const rules = opts.alertRules ? loadRules(opts.alertRules, opts.alertRulesSetting) : defaultRules();
  const channels = channelsFromEnv();
  const delivery = new AlertDelivery(channels);
  const registry = await openRegistry(opts.registry ?? setting('CRYPTOCAST_REGISTRY') ?? DEFAULT_REGISTRY);
  const champion = championCard(
    registry,
    opts.name ?? setting('CRYPTOCAST_MODEL_NAME') ?? DEFAULT_MODEL_NAME,
    60_000,
  );
  let championCreatedAt: number | undefined;
  const refreshChampion = () =>
    champion()
      .then((c) => {
        championCreatedAt = c?.createdAt;
      })
      .catch(() => {});
  await refreshChampion();
  const championTimer = setInterval(refreshChampion, 60_000);
  championTimer.unref();
  // A PostgreSQL that is not there yet is waited for; a stop meanwhile ends the command.
  const signal = abort.signal;
  const stores = await openUnlessStopped(signal, 'monitor', () =>
    openAll({
      errors: () => openErrorsStore(storeUrl, { signal }),
      candles: () => openCandlesTable(storeUrl, { signal }),
      ...(latePolicy === 'revise'
        ? { candleFirstEmissions: () => openCandleFirstEmissionsTable(storeUrl, { signal }) }
        : {}),
    }),
  );
  if (!stores) {
    clearInterval(championTimer);
    return registry.close();
  }
  const { errors: store, candles } = stores;
  const candleFirstEmissions = 'candleFirstEmissions' in stores ? stores.candleFirstEmissions : undefined;
  const bus = await connectBus(busUrl);
  const svc = new MonitorService(bus, store, {
    clock,
    stopTimeoutMs,
    candles,
    ...(candleFirstEmissions ? { candleFirstEmissions } : {}),
    latePolicy,
    alerts: { engine: new AlertEngine(rules, delivery), championCreatedAt: () => championCreatedAt },
  });
  const starting = stopWhileStarting(abort.signal, bus);
  try {
    if (!(await starting.start('monitor', () => svc.start()))) return;
    markStarted();
    log.info(
      {
        service: 'monitor',
        bus: busUrl,
        store: store.kind,
        clock,
        latePolicy,
        rules: rules.length,
        channels: channels.map((c) => c.name),
      },
      'running',
    );
    const timer = setInterval(
      () =>
        log.info(
          {
            service: 'monitor',
            ...svc.stats,
            ...svc.join.stats,
            waiting: svc.join.pendingCount(),
            latePolicyMismatch: svc.latePolicyCheck?.mismatch,
          },
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
    clearInterval(championTimer);
    await svc.stop();
    await delivery.close();
    await bus.close();
    await store.close();
    await candles.close();
    await candleFirstEmissions?.close();
    await registry.close();
  }
}
