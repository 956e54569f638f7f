import { ERR, fail } from '../core/errors.ts';
import type { Bus } from './bus.ts';
import { busUrlProblem } from './bus-url.ts';
import { InProcessBus } from './in-process-bus.ts';
import { MeteredBus } from './metered-bus.ts';

/**
 * Opens the transport named by a bus URL: `memory` (embedded default) or `kafka://host:port[,...]`, metered (see
 * MeteredBus: every service exports the same transport metrics).
 */
export async function connectBus(url: string): Promise<Bus> {
  if (url === 'memory') return new MeteredBus(new InProcessBus());
  if (url.startsWith('kafka://')) {
    const { KafkaBus } = await import('./kafka/bus.ts');
    return new MeteredBus(await KafkaBus.connect(url));
  }
  throw fail(ERR.CONFIG, busUrlProblem(url)!);
}
