import { UsageError } from '../core/errors.ts';

/** Flag values shared by several commands, checked before anything starts. */

/** A TCP port: a whole number 0–65535 (0: any free port). */
export function parsePort(text: string, flag = '--port'): number {
  const port = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new UsageError(`${flag} must be a TCP port from 0 to 65535 (0: any free port), got "${text}"`);
  return port;
}
