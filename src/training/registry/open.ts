import type { ModelRegistry } from './registry.ts';
import { RegistryError } from './registry.ts';

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
