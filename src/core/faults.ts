import { setting } from '../config/env.ts';

/**
 * Fault injection for crash tests: `CRYPTOCAST_FAULT=<point>:<n>` makes the process kill itself with SIGKILL
 * the n-th time it passes the named point. Tests use it to crash a service in the narrowest window (output
 * published, offsets not yet committed), which a kill from outside hits only by luck. Unset: no effect.
 */
const spec = /^([\w:.-]+):(\d+)$/.exec(setting('CRYPTOCAST_FAULT') ?? '');
let hits = 0;

export function faultPoint(name: string): void {
  if (spec === null || spec[1] !== name) return;
  if (++hits === Number(spec[2])) {
    process.stderr.write(`fault injection: SIGKILL at ${name} #${hits}\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}
