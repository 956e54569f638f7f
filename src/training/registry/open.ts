import { ERR, fail } from '../../core/errors.ts';
import type { ModelRegistry } from './registry.ts';
import { RegistryError, RegistryFileError } from './registry.ts';

export const DEFAULT_REGISTRY = '.data/registry';

/**
 * Opens a registry by URL: a directory path (`.data/registry`, `file:PATH`) or an MLflow tracking server
 * (`mlflow+http://host:port` or `mlflow+https://…`; a token for it comes from MLFLOW_TRACKING_TOKEN). The backends
 * are loaded only when asked for.
 */
export async function openRegistry(url: string): Promise<ModelRegistry> {
  if (/^mlflow\+https?:\/\//.test(url)) {
    const { MlflowRegistry } = await import('./mlflow.ts');
    return new MlflowRegistry(url.slice('mlflow+'.length));
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
