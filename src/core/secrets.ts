import { SECRET_NAMES, secret } from '../config/env.ts';

/**
 * Secrets never reach a log line, an error message or a command's output, even when an upstream echoes them back
 * (an LLM server answering 401 with "Incorrect API key provided: sk-…", an exchange quoting the key it refused).
 *
 * One function does it, and the logger itself calls it on every line it writes (see log.ts), so a new log call
 * cannot forget. It removes:
 * - the value of every environment variable `config/env.ts` marks as a secret (whatever text it appears in);
 * - passwords in URLs (`postgres://user:PASSWORD@host`), secret query parameters (`?token=…`), and the credential
 *   after `Bearer ` or `Basic ` (a header quoted in an error).
 */

/** The secret-bearing environment variables: those `config/env.ts` marks as secrets. */
export const SECRET_ENV_VARS: readonly string[] = SECRET_NAMES;

export const REDACTED = '[redacted]';

/** Values shorter than this are not treated as secrets (redacting "a" would mangle every line). */
const MIN_SECRET_LENGTH = 6;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The secret values configured in `env` (comma lists, e.g. CRYPTOCAST_API_KEYS, give one value each). */
export function secretValues(env: NodeJS.ProcessEnv = process.env): string[] {
  const out = new Set<string>();
  for (const name of SECRET_NAMES) {
    const v = secret(name, env);
    if (!v) continue;
    out.add(v.trim());
    for (const part of v.split(',')) if (part.trim()) out.add(part.trim());
  }
  return [...out].filter((s) => s.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
}

const GENERIC: [RegExp, string][] = [
  // userinfo password in any URL: scheme://user:password@host. The password runs to the last `@` before a space or a
  // quote (the end of a JSON string), as a URL parser takes it: a generated password may hold `@` or `/` unencoded,
  // and such a URL works. A URL with a port and an `@` in its path (`https://h:8080/a@b`) loses its port in the log.
  [/([a-z][a-z0-9+.-]*:\/\/[^\s:/@"']*):[^\s"']*@/gi, `$1:${REDACTED}@`],
  // secret query parameters
  [/([?&](?:auth_token|token|apikey|api_key|key|password|secret)=)[^&\s"']+/gi, `$1${REDACTED}`],
  // credentials quoted from an Authorization header
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/g, `$1 ${REDACTED}`],
  // OpenAI-style keys echoed without their header
  [/\bsk-[A-Za-z0-9_-]{8,}/g, REDACTED],
];

let cachedKey = '';
let cachedPattern: RegExp | undefined;

function valuesPattern(env: NodeJS.ProcessEnv): RegExp | undefined {
  const values = secretValues(env);
  const key = values.join('\u0000');
  if (key !== cachedKey) {
    cachedKey = key;
    cachedPattern = values.length === 0 ? undefined : new RegExp(values.map(escapeRegExp).join('|'), 'g');
  }
  return cachedPattern;
}

/** `text` with every secret replaced by `[redacted]`. Cheap when there is nothing to hide. */
export function redactSecrets(text: string, env: NodeJS.ProcessEnv = process.env): string {
  let out = text;
  const p = valuesPattern(env);
  if (p !== undefined) out = out.replace(p, REDACTED);
  for (const [re, by] of GENERIC) out = out.replace(re, by);
  return out;
}

/**
 * A URL to show (a log field, a message) with its user info removed, whatever its password holds: everything from
 * `scheme://` to the last `@` goes. The line-wide URL pattern of `redactSecrets` stops at the first `@` and at a `/`,
 * which a password pasted as it is may hold (the URL parser takes the last `@` as the end of the user info, so such a
 * URL works, and its password was logged). Text that is not a `scheme://` URL (a folder, `duckdb:PATH`) is unchanged.
 */
export function urlWithoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/).*@/is, `$1${REDACTED}@`);
}
