import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SECRET_NAMES, secret, setting, VARIABLES } from '../../../src/config/env.ts';
import { SECRET_ENV_VARS } from '../../../src/core/secrets.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const VARIABLE =
  /\b(CRYPTOCAST_[A-Z0-9_]*[A-Z0-9]|MLFLOW_TRACKING_[A-Z]+|OPENAI_API_KEY|BINANCE_API_[A-Z]+|CRYPTOPANIC_TOKEN|PGPASSWORD)\b/g;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/** `A_{X,Y}_B` → A_X_B, A_Y_B (the README writes families of variables so). */
function expand(text: string): string[] {
  const m = /\{([^}]*)\}/.exec(text);
  if (m === null) return [text];
  return m[1]!
    .split(',')
    .flatMap((alt) => expand(text.slice(0, m.index) + alt + text.slice(m.index + m[0].length)));
}

describe('the environment, read in one place', () => {
  it('every variable named in src/ is in the table, and only config/ reads process.env', () => {
    const named = new Set<string>();
    const readers: string[] = [];
    for (const file of sources(join(ROOT, 'src'))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(VARIABLE)) named.add(m[1]!);
      if (file.includes(`${join('src', 'config')}`) || file.includes(join('src', 'dashboard', 'web')))
        continue;
      for (const line of text.split('\n')) {
        // Node's and npm's own variables, and the whole environment handed on to a child, are not settings.
        const rest = line
          .replace(/process\.env\.(NODE_ENV|npm_package_version)\b/g, '')
          .replace(/\.\.\.process\.env\b/g, '')
          .replace(/env: NodeJS\.ProcessEnv = process\.env/g, '')
          .replace(/process\.env\.CRYPTOCAST_LOG_LEVEL \?\?=/g, '');
        if (/process\.env/.test(rest)) readers.push(`${file}: ${line.trim()}`);
      }
    }
    assert.deepEqual(readers, [], 'read the environment through config/env.ts');
    const missing = [...named].filter((n) => !(n in VARIABLES) && !n.startsWith('CRYPTOCAST_TEST_'));
    assert.deepEqual(missing, []);
  });

  it('the README lists every variable', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const listed = new Set([...readme.matchAll(/`([A-Z][A-Z0-9_{},]+)`/g)].flatMap((m) => expand(m[1]!)));
    const absent = Object.keys(VARIABLES).filter((n) => !listed.has(n));
    assert.deepEqual(absent, []);
  });

  it('checks and types a value; empty is unset; a bad value names the variable (CC_ERR_CONFIG)', () => {
    const env = {
      CRYPTOCAST_API_RATE: '12.5',
      CRYPTOCAST_CORS_ORIGINS: ' https://a.example , ,https://b.example',
      CRYPTOCAST_KRAKEN_MIN_INTERVAL_MS: '0',
      CRYPTOCAST_TOPIC_PREFIX: '',
    };
    assert.equal(setting('CRYPTOCAST_API_RATE', env), 12.5);
    assert.deepEqual(setting('CRYPTOCAST_CORS_ORIGINS', env), ['https://a.example', 'https://b.example']);
    assert.equal(setting('CRYPTOCAST_KRAKEN_MIN_INTERVAL_MS', env), 0);
    assert.equal(setting('CRYPTOCAST_TOPIC_PREFIX', env), undefined);
    assert.equal(setting('CRYPTOCAST_API_BURST', env), undefined);
    for (const [name, value, expected] of [
      ['CRYPTOCAST_API_BURST', '0', 'a positive number'],
      ['CRYPTOCAST_WS_MAX_FRAMES', 'many', 'a positive number'],
      ['CRYPTOCAST_COINBASE_SIDE', 'both', 'maker or taker'],
      ['CRYPTOCAST_KRAKEN_MIN_INTERVAL_MS', '-1', 'a number ≥ 0'],
    ] as const)
      assert.throws(
        () => setting(name, { [name]: value }),
        (err: Error & { code?: string; exitCode?: number }) => {
          assert.equal(err.code, 'CC_ERR_CONFIG');
          assert.equal(err.exitCode, 2);
          assert.equal(err.message, `${name} must be ${expected}, got "${value}"`);
          return true;
        },
      );
  });

  // The API's trusted proxies: addresses and CIDR blocks only. `true`/`*` (every peer) would let any client name its own
  // address, and a hop count Fastify takes as "trust no peer", so both are refused rather than silently weakened.
  it('CRYPTOCAST_API_TRUST_PROXY: addresses and CIDR blocks; every peer, a hop count or a bad block is CC_ERR_CONFIG', () => {
    const name = 'CRYPTOCAST_API_TRUST_PROXY';
    assert.deepEqual(setting(name, { [name]: ' 10.0.0.0/8, fd00::/8 ,192.0.2.7,uniquelocal' }), [
      '10.0.0.0/8',
      'fd00::/8',
      '192.0.2.7',
      'uniquelocal',
    ]);
    assert.equal(setting(name, { [name]: '' }), undefined);
    for (const value of ['true', '*', '1', '10.0.0.0/33', 'fd00::/129', 'ingress', '10.0.0.0/8/1'])
      assert.throws(
        () => setting(name, { [name]: value }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'CC_ERR_CONFIG');
          assert.match(err.message, new RegExp(`^${name} must be the proxies’ addresses or CIDR blocks`));
          return true;
        },
        value,
      );
  });

  it('secrets are the ones redaction knows, and are read only as secrets', () => {
    assert.deepEqual([...SECRET_ENV_VARS].sort(), [...SECRET_NAMES].sort());
    for (const n of ['CRYPTOCAST_API_KEYS', 'CRYPTOPANIC_TOKEN', 'MLFLOW_TRACKING_PASSWORD', 'PGPASSWORD'])
      assert.ok((SECRET_NAMES as string[]).includes(n), n);
    assert.equal(secret('CRYPTOPANIC_TOKEN', { CRYPTOPANIC_TOKEN: 'abc123xyz' }), 'abc123xyz');
    assert.equal(secret('CRYPTOPANIC_TOKEN', { CRYPTOPANIC_TOKEN: '' }), undefined);
  });
});
