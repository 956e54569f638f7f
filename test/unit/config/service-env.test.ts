import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { NOT_SERVICE_SETTINGS, SERVICE_ENV, SERVICES } from '../../../src/config/service-env.ts';
import { SECRET_ENV_VARS } from '../../../src/core/secrets.ts';

const SRC = join(import.meta.dirname, '..', '..', '..', 'src');

/** Every environment variable name the sources read: process.env.X, env.X, env['X'], .env('X'), 'CRYPTOCAST_…' and 'PG…' literals. */
function namesReadBySources(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const patterns = [
    /\b(?:process\.)?env\.([A-Z][A-Z0-9_]+)/g,
    /\benv\[['"]([A-Z][A-Z0-9_]+)['"]\]/g,
    /\.env\(['"]([A-Z][A-Z0-9_]+)['"]\)/g,
    /['"]((?:CRYPTOCAST|MLFLOW|OPENAI|BINANCE|CRYPTOPANIC)_[A-Z0-9_]+)['"]/g,
    // libpq's names (PGPASSWORD, PGSSLMODE, PGSSLROOTCERT), read by src/stores/pg-connection.ts
    /['"](PG[A-Z]+)['"]/g,
  ];
  for (const f of readdirSync(SRC, { recursive: true }) as string[]) {
    if (!f.endsWith('.ts') || f === join('config', 'service-env.ts')) continue;
    const text = readFileSync(join(SRC, f), 'utf8');
    for (const re of patterns)
      for (const m of text.matchAll(re)) found.set(m[1]!, [...(found.get(m[1]!) ?? []), f]);
  }
  return found;
}

// Never read, only redacted should it be set.
const LIBRARY_READS = new Set(['BINANCE_API_SECRET']);

test('every variable the sources read is declared: a service setting, or named as not one', () => {
  const declared = new Set([...SERVICE_ENV.map((s) => s.name), ...Object.keys(NOT_SERVICE_SETTINGS)]);
  const missing = [...namesReadBySources()]
    .filter(([n]) => !declared.has(n))
    .map(([n, f]) => `${n} (${f.join(', ')})`);
  assert.deepEqual(missing, [], 'add them to src/config/service-env.ts');
});

test('every declared setting is read somewhere (no stale entries)', () => {
  const read = namesReadBySources();
  const stale = SERVICE_ENV.map((s) => s.name).filter((n) => !read.has(n) && !LIBRARY_READS.has(n));
  assert.deepEqual(stale, []);
});

test('the table is well formed: known services, no duplicates, secrets never required', () => {
  const names = SERVICE_ENV.map((s) => s.name);
  assert.equal(new Set(names).size, names.length);
  for (const s of SERVICE_ENV) {
    assert.ok(s.services.length > 0, s.name);
    for (const svc of s.services) assert.ok(SERVICES.includes(svc), `${s.name}: ${svc}`);
    // A required secret would force a credential on deployments that need none.
    assert.ok(!(s.secret && s.required), s.name);
  }
});

test('the secrets of the inventory are the ones the logger redacts (src/core/secrets.ts)', () => {
  const mine = SERVICE_ENV.filter((s) => s.secret)
    .map((s) => s.name)
    .sort();
  assert.deepEqual(mine, [...SECRET_ENV_VARS].sort());
});
