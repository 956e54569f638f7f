import { redactSecrets } from './secrets.ts';

/**
 * The process's readiness, for `/ready` probes: not ready while starting or while a dependency it needs (broker,
 * store, registry) is being retried, with the reason. One state per process: each `cryptocast service …` is one
 * process; the components it runs report their dependencies by name.
 */
const waiting = new Map<string, string>([['start', 'starting']]);

/** The service has started (its subscriptions run). */
export function markStarted(): void {
  waiting.delete('start');
}

/** A dependency is unavailable (`reason`), or available again (`reason` undefined). */
export function dependency(name: string, reason: string | undefined): void {
  if (reason === undefined) waiting.delete(`dep:${name}`);
  else waiting.set(`dep:${name}`, `${name}: ${reason}`);
}

export function readiness(): { ready: boolean; reason?: string } {
  if (waiting.size === 0) return { ready: true };
  // A reason is a dependency's error, which an upstream may have filled with a credential it refused (a proxy before
  // MLflow quoting the bearer token): it leaves the process on /ready without the logger, so it is redacted here.
  return { ready: false, reason: redactSecrets([...waiting.values()].join('; ')) };
}
