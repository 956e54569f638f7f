import pino from 'pino';

/**
 * Structured logs (pino, JSON lines on stderr so stdout stays free for command output). Secrets must never
 * be logged: known secret-bearing fields are redacted wherever they appear.
 */
export const log = pino(
  {
    level: process.env.CRYPTOCAST_LOG_LEVEL ?? (process.env.NODE_ENV === 'test' ? 'warn' : 'info'),
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
  },
  pino.destination(2),
);

export type Logger = pino.Logger;
