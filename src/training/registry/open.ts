import { ERR, fail } from '../../core/errors.ts';
import type { ModelRegistry } from './registry.ts';
import { RegistryError, RegistryFileError } from './registry.ts';

export const DEFAULT_REGISTRY = '.data/registry';

export interface OpenRegistryOptions {
  /**
   * How long a request that finds the registry away (MLflow not answering, or answering 429, 502, 503 or 504: a
   * restart) is tried again, with back-off, before it fails. Default 0: it fails at once, as a command run by hand
   * and a first question (`requireAnswer`) want; a service polling it (the predictor) asks again at its next poll.
   */
  retryForMs?: number;
  /** Ends that trying again at once (a first try is still made): the process is stopping. */
  signal?: AbortSignal;
}

/**
 * How a training run opens its registry (`train`, `service trainer`): its requests ride out a restart of MLflow of up
 * to two minutes (this machine's MLflow takes 40 s to start under load). Failing at once, a fit of minutes to an hour
 * was thrown away for a registry away for seconds when it was done — and one away between moving the champion and
 * recording the move ended the run as failed with the champion moved.
 */
export const TRAINING_REGISTRY: OpenRegistryOptions = { retryForMs: 120_000 };

/**
 * Opens a registry by URL: a directory path (`.data/registry`, `file:PATH`) or an MLflow tracking server
 * (`mlflow+http://host:port` or `mlflow+https://…`; a token for it comes from MLFLOW_TRACKING_TOKEN). The backends
 * are loaded only when asked for.
 */
export async function openRegistry(url: string, options: OpenRegistryOptions = {}): Promise<ModelRegistry> {
  if (/^mlflow\+https?:\/\//.test(url)) {
    const { MlflowRegistry } = await import('./mlflow.ts');
    return new MlflowRegistry(url.slice('mlflow+'.length), {
      retryForMs: options.retryForMs,
      signal: options.signal,
    });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url))
    throw new RegistryError(`unknown registry URL "${url}": use a directory path or mlflow+http://host:port`);
  const { LocalRegistry } = await import('./local.ts');
  return new LocalRegistry(url.startsWith('file:') ? url.slice(5) : url);
}

/**
 * Asks the registry for `name`'s champion before any work: one that cannot answer now (a file where a folder should
 * be, an MLflow that is not running) is a setting to fix, said at once — a service would wait for it instead.
 */
export async function requireAnswer(registry: ModelRegistry, name: string, hint: string): Promise<void> {
  await registry.alias(name, 'champion').catch((err: unknown) => {
    // A registry that answered with a file of its own it cannot read (a damaged aliases.json) said which file and
    // what to do: that is the message, not "does not answer" with a hint about the URL.
    if (err instanceof RegistryFileError) throw err;
    throw fail(
      ERR.REGISTRY,
      `the model registry ${registry.location} does not answer: ${(err as Error).message}`,
      {
        hint,
        cause: err,
      },
    );
  });
}
