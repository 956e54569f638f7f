import type { WsOptions } from './ws.ts';

/** The API's settings. Keys come only from the environment (`apiOptionsFromEnv`), never from flags or files. */
export interface ApiOptions {
  /** Accepted API keys; empty or absent: no authentication. */
  apiKeys?: readonly string[];
  /** Per-key token bucket: sustained requests per second and burst (default 50/s, burst 100). */
  ratePerSecond?: number;
  burst?: number;
  /** Failed authentications allowed per client address: per minute, and burst (default 10/min, burst 20). */
  failedAuthPerMinute?: number;
  failedAuthBurst?: number;
  /** CORS: allowed origins (`*` for any); absent or empty: no CORS headers. */
  corsOrigins?: readonly string[];
  /** Widest history range (default 31 days). */
  maxRangeMs?: number;
  ws?: WsOptions;
}

/** Reads the API's settings from the environment (keys come only from there). */
export function apiOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): ApiOptions {
  const list = (s: string | undefined) =>
    (s ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  const num = (name: string): number | undefined => {
    const s = env[name];
    if (s === undefined || s === '') return undefined;
    const n = Number(s);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${s}"`);
    return n;
  };
  return {
    apiKeys: list(env.CRYPTOCAST_API_KEYS),
    ratePerSecond: num('CRYPTOCAST_API_RATE'),
    burst: num('CRYPTOCAST_API_BURST'),
    corsOrigins: list(env.CRYPTOCAST_CORS_ORIGINS),
    ws: {
      maxFramesPerSecond: num('CRYPTOCAST_WS_MAX_FRAMES'),
      maxBufferedBytes: num('CRYPTOCAST_WS_MAX_BUFFER'),
    },
  };
}
