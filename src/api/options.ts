import { secret, setting } from '../config/env.ts';
import { ERR, fail } from '../core/errors.ts';
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
  /**
   * The proxies whose `X-Forwarded-For` names the client (Fastify's `trustProxy`): their addresses and CIDR blocks
   * (`uniquelocal`: the private ranges). Absent: none, the client is the connection's peer — behind an Ingress, the controller,
   * for every client alike. Never every peer: a client could then name any address and get a fresh failed-key budget.
   */
  trustProxy?: readonly string[];
  /** CORS: allowed origins (`*` for any); absent or empty: no CORS headers. */
  corsOrigins?: readonly string[];
  /** Widest history range (default 31 days). */
  maxRangeMs?: number;
  /** How long a client may take to send a whole request, headers included (default 30 s): then 408. */
  requestTimeoutMs?: number;
  /** How long a store read may take before the request gets a 503 `store_unavailable` (default 10 s). */
  storeTimeoutMs?: number;
  ws?: WsOptions;
  /**
   * Serve `/metrics` on the API's own port, without a key (default true: Prometheus scrapes it there inside the
   * cluster). False: not there — the process's metrics are then only on `--metrics-port` (`service api
   * --metrics-port-only`), as every other service serves them, and the public port does not show them to anyone.
   */
  publicMetrics?: boolean;
}

/**
 * The shortest API key accepted (characters). A short key is guessed: the failed-key budget (10 a minute per address)
 * slows one guesser, not many addresses, and keys under 6 characters are not even redacted from the log
 * (src/core/secrets.ts). 16 random characters from `openssl rand -hex 32`'s alphabet are 64 bits.
 */
export const MIN_API_KEY_LENGTH = 16;

/**
 * The API keys of CRYPTOCAST_API_KEYS (comma list, blanks dropped); a key shorter than MIN_API_KEY_LENGTH is refused
 * (CC_ERR_CONFIG), named by its place in the list and its length, never by its value.
 */
function apiKeysFromEnv(env: NodeJS.ProcessEnv): string[] {
  const keys = (secret('CRYPTOCAST_API_KEYS', env) ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  keys.forEach((key, i) => {
    if (key.length < MIN_API_KEY_LENGTH)
      throw fail(
        ERR.CONFIG,
        `CRYPTOCAST_API_KEYS: key ${i + 1} of ${keys.length} has ${key.length} characters, fewer than the ${MIN_API_KEY_LENGTH} an API key needs`,
        { hint: 'give long random keys, e.g. openssl rand -hex 32 (64 characters)' },
      );
  });
  return keys;
}

/** Reads the API's settings from the environment (keys come only from there). */
export function apiOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): ApiOptions {
  return {
    apiKeys: apiKeysFromEnv(env),
    ratePerSecond: setting('CRYPTOCAST_API_RATE', env),
    burst: setting('CRYPTOCAST_API_BURST', env),
    trustProxy: setting('CRYPTOCAST_API_TRUST_PROXY', env),
    corsOrigins: setting('CRYPTOCAST_CORS_ORIGINS', env) ?? [],
    ws: {
      maxFramesPerSecond: setting('CRYPTOCAST_WS_MAX_FRAMES', env),
      maxBufferedBytes: setting('CRYPTOCAST_WS_MAX_BUFFER', env),
      maxClients: setting('CRYPTOCAST_WS_MAX_CLIENTS', env),
    },
  };
}
