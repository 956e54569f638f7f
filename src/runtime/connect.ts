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
    return new MeteredBus(
      KafkaBus.connect(url, {
        // A running client refused for good (credentials rotated or revoked, a certificate replaced; refused past the
        // grace of `KafkaBus.refused`, CRYPTOCAST_KAFKA_REFUSED_FOR_MS): the process ends
        // with the catalogued error, through the binary's handler of an error nobody awaits (src/cli/main.ts: one
        // line, redacted, its exit status), so that Kubernetes restarts it with the new Secret.
        onRefused: (err) => {
          void Promise.reject(err);
        },
      }),
    );
  }
  throw fail(ERR.CONFIG, busUrlProblem(url)!);
}
