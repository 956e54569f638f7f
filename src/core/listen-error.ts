import { CryptocastError, ERR, fail } from './errors.ts';

/**
 * A server that could not listen, as one catalogued line naming the flag and the port (CC_ERR_CONFIG: the user
 * picks another port or stops the other process), instead of Node's `listen EADDRINUSE` stack. Shared by the API
 * (`--port`) and the services' metrics port (`--metrics-port`).
 */
export function listenError(err: unknown, port: number, flag: string, host?: string): CryptocastError {
  if (err instanceof CryptocastError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const where = host === undefined ? `port ${port}` : `${host}:${port}`;
  if (code === 'EADDRINUSE')
    return fail(ERR.CONFIG, `${flag} ${port}: ${where} is already in use by another process`, {
      hint: `stop that process, or give another ${flag} (0: any free port)`,
      cause: err,
    });
  if (code === 'EACCES')
    return fail(ERR.CONFIG, `${flag} ${port}: not allowed to listen on ${where}`, {
      hint: `ports below 1024 need privileges: give another ${flag}`,
      cause: err,
    });
  if (code === 'EADDRNOTAVAIL')
    return fail(ERR.CONFIG, `${flag} ${port}: cannot listen on ${where}: no such address on this machine`, {
      cause: err,
    });
  return fail(ERR.CONFIG, `${flag} ${port}: cannot listen on ${where}: ${code ?? (err as Error).message}`, {
    cause: err,
  });
}
