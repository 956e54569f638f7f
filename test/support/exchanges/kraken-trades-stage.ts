import { KrakenWsSource } from '../../../src/ingestion/live/kraken-ws.ts';
import { TradeService } from '../../../src/ingestion/trade-service.ts';
import type { Bus } from '../../../src/runtime/bus.ts';
import { FAST_CONNECTOR } from './harness.ts';
import type { KrakenServer } from './kraken.ts';

/**
 * A trades stage on `bus` with a Kraken connector for `pair` on `srv`, running until `stop()` (which resolves with the
 * run's error, if any): the restart tests' stage, its service options (`service`) and REST pacing given by each.
 */
export function krakenTradesStage(
  bus: Bus,
  srv: KrakenServer,
  pair: string,
  o: { service?: ConstructorParameters<typeof TradeService>[1]; restMinIntervalMs?: number } = {},
) {
  const service = new TradeService(bus, o.service);
  const source = new KrakenWsSource({
    pairs: [pair],
    wsUrl: srv.wsUrl,
    restUrl: srv.restUrl,
    ...FAST_CONNECTOR,
    restMinIntervalMs: o.restMinIntervalMs ?? 0,
  });
  const abort = new AbortController();
  const done = service.run([source], abort.signal).catch((err: unknown) => err);
  return {
    service,
    source,
    stop: async () => {
      abort.abort();
      return done;
    },
  };
}
