import { parseDuration } from '../config/config.ts';
import { setting } from '../config/env.ts';
import { UsageError } from '../core/errors.ts';

/** Flag values shared by several commands, checked before anything starts. */

/** A TCP port: a whole number 0–65535 (0: any free port). */
export function parsePort(text: string, flag = '--port'): number {
  const port = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new UsageError(`${flag} must be a TCP port from 0 to 65535 (0: any free port), got "${text}"`);
  return port;
}

/** The API's port: `--port`, else CRYPTOCAST_API_PORT, else 8080 (what `service api` listens on). */
export function apiPort(flag: string | undefined): number {
  return parsePort(flag ?? setting('CRYPTOCAST_API_PORT') ?? '8080');
}

/**
 * A positive duration flag: `90s`, `2m`, `500ms`, with its unit as every duration of the CLI (parseDuration): a bare
 * number, once taken as seconds by some flags and as milliseconds by others, is refused (CC_ERR_CONFIG).
 */
export function parsePositiveDuration(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const ms = parseDuration(text, flag);
  if (!(ms > 0)) throw new UsageError(`${flag} must be positive, got "${text}"`);
  return ms;
}
