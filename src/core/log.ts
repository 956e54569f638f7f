import pino from 'pino';
import { setting } from '../config/env.ts';
import { redactSecrets } from './secrets.ts';

/**
 * Structured logs (pino, JSON lines on stderr so stdout stays free for command output). Secrets must never
 * be logged: known secret-bearing fields are redacted wherever they appear, and every line passes through
 * `redactSecrets` before it is written (a secret echoed inside an upstream's error text included).
 */
const stderr = pino.destination(2);
let lineWriter: ((line: string) => void) | undefined;

/**
 * Hands every log line (JSON, already redacted) to `write` instead of stderr; undefined restores stderr. `run` on a
 * terminal prints them as short lines above its status line, which JSON written into it would garble.
 */
export function redirectLogLines(write: ((line: string) => void) | undefined): void {
  lineWriter = write;
}

export const log = pino(
  {
    level: setting('CRYPTOCAST_LOG_LEVEL') ?? (process.env.NODE_ENV === 'test' ? 'warn' : 'info'),
    base: { app: 'cryptocast' },
    redact: {
      paths: [
        'token',
        'apiKey',
        'authToken',
        'auth_token',
        'password',
        '*.token',
        '*.apiKey',
        '*.password',
        '*.auth_token',
      ],
      censor: '[redacted]',
    },
    hooks: { streamWrite: (line) => redactSecrets(line) },
  },
  {
    write(line: string) {
      if (lineWriter !== undefined) lineWriter(line);
      else stderr.write(line);
    },
  },
);

export type Logger = pino.Logger;
