import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { REDACTED, redactSecrets, SECRET_ENV_VARS } from '../../../src/core/secrets.ts';
import { fetchBinanceTrades } from '../../../src/ingestion/live/binance-trades-api.ts';
import { CLI } from '../../support/cli.ts';

const secretFor = (name: string) => `s3cr3t-${name.toLowerCase()}-Zx9`;

describe('secrets never reach a log line or an output', () => {
  for (const name of SECRET_ENV_VARS) {
    it(`${name}: its value is redacted from any text`, () => {
      const value = secretFor(name);
      const text = `upstream said: "Incorrect API key provided: ${value}" (${value.length} chars)`;
      const out = redactSecrets(text, { [name]: value });
      assert.ok(!out.includes(value), out);
      assert.ok(out.includes(REDACTED));
    });
  }

  it('each key of a comma list (CRYPTOCAST_API_KEYS) is a secret of its own', () => {
    const out = redactSecrets('bad key key-one-123 then key-two-456', {
      CRYPTOCAST_API_KEYS: 'key-one-123,key-two-456',
    });
    assert.equal(out, `bad key ${REDACTED} then ${REDACTED}`);
  });

  it('passwords in URLs, secret query parameters, Authorization credentials and sk- keys, whatever the env', () => {
    const out = redactSecrets(
      'postgres://cc:pa55word@db:5432/x https://h/p?symbol=X&token=abcdef123&x=1 Bearer abc.def-123456 sk-proj-ABCDEFGH12345',
      {},
    );
    for (const s of ['pa55word', 'abcdef123', 'abc.def-123456', 'sk-proj-ABCDEFGH12345'])
      assert.ok(!out.includes(s), out);
    assert.match(out, /postgres:\/\/cc:\[redacted\]@db:5432\/x/);
    assert.match(out, /symbol=X&token=\[redacted\]&x=1/);
  });

  // A generated password holds any character: a URL parser takes the user info up to the last `@` (pg, MLflow's
  // fetch), so such a URL works, and the part after its first `@` or a `/` was logged.
  for (const password of ['p@ss-of-test', 'pa/ss-of-test', 'p@s/s-of-test'])
    it(`a URL password with "${password.replace(/[^@/]/g, '')}" in it is redacted whole, in a line and in a JSON log line`, () => {
      const url = `postgres://cc:${password}@db:5432/x`;
      for (const text of [
        `cannot reach ${url} (ECONNREFUSED) for user@example.com`,
        JSON.stringify({ store: url, msg: 'x@y' }),
      ]) {
        const out = redactSecrets(text, {});
        assert.ok(!out.includes('ss-of-test'), out);
        assert.ok(out.includes('postgres://cc:[redacted]@db:5432/x'), out);
        assert.ok(
          out.includes('@example.com') || out.includes('x@y'),
          `the rest of the line is kept: ${out}`,
        );
      }
    });

  it('the CLI prints no part of a registry URL password that holds a "/" (an unknown scheme is refused quoting the URL)', () => {
    // From CRYPTOCAST_REGISTRY: a password in the --registry flag is refused before anything runs.
    const r = spawnSync(CLI, ['models', 'list'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, CRYPTOCAST_REGISTRY: 'mlflow+ftp://u:Rg9/pass-of-test@127.0.0.1:1' },
    });
    assert.notEqual(r.status, 0, r.stderr);
    assert.ok(!`${r.stdout}${r.stderr}`.includes('pass-of-test'), r.stderr);
    assert.match(r.stderr, /unknown registry URL/);
  });

  it('short values are not treated as secrets (a 1-letter token would mangle every line)', () => {
    assert.equal(redactSecrets('a b c', { CRYPTOPANIC_TOKEN: 'a' }), 'a b c');
  });

  it('the logger itself redacts every configured secret from every line it writes', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, CRYPTOCAST_LOG_LEVEL: 'info' };
    for (const name of SECRET_ENV_VARS) env[name] = secretFor(name);
    const logModule = join(import.meta.dirname, '..', '..', '..', 'src', 'core', 'log.ts');
    const script = `
      const { log } = await import(${JSON.stringify(logModule)});
      for (const v of ${JSON.stringify(SECRET_ENV_VARS.map(secretFor))}) {
        log.error({ err: new Error('401 from upstream: ' + v), body: { detail: v } }, 'request failed with ' + v);
      }
      log.flush?.();`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, SECRET_ENV_VARS.length, 'one line per secret was logged');
    for (const name of SECRET_ENV_VARS)
      assert.ok(!r.stderr.includes(secretFor(name)), `${name} leaked: ${r.stderr}`);
    assert.match(lines[0]!, /request failed with \[redacted\]/);
  });
});

describe('secrets echoed by upstreams (end to end)', () => {
  let server: Server;
  let url = '';
  const LLM_KEY = 'sk-test-0123456789abcdefXYZ';
  const BINANCE_KEY = 'binance-key-0123456789ABCDEF';
  before(async () => {
    server = createServer((req, res) => {
      // Both upstreams quote the credential they refuse, as real ones do.
      if (req.url?.startsWith('/v1/chat/completions')) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ error: { message: `Incorrect API key provided: ${req.headers.authorization}` } }),
        );
      } else {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            code: -2015,
            msg: `Invalid API-key ${req.headers['x-mbx-apikey']}, IP, or permissions`,
          }),
        );
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('sentiment score against an OpenAI-compatible server that answers 401 quoting the key: not in stdout nor stderr', async () => {
    let stdout = '';
    let stderr = '';
    try {
      // Asynchronously: the server that answers lives in this process.
      ({ stdout, stderr } = await promisify(execFile)(
        CLI,
        [
          'sentiment',
          'score',
          'Bitcoin rallies',
          '--backend',
          'openai',
          '--base-url',
          `${url}/v1`,
          '--model',
          'm',
        ],
        {
          env: { ...process.env, CRYPTOCAST_LLM_API_KEY: LLM_KEY, CRYPTOCAST_LOG_LEVEL: 'debug' },
          encoding: 'utf8',
        },
      ));
    } catch (e) {
      stdout = String((e as { stdout?: string }).stdout ?? '');
      stderr = String((e as { stderr?: string }).stderr ?? '');
    }
    const all = stdout + stderr;
    assert.ok(all.length > 0, 'the command printed something');
    assert.ok(!all.includes(LLM_KEY), all);
    assert.ok(!all.includes(LLM_KEY.slice(3)), all);
    assert.match(all, /401/, 'the failure itself is still reported');
  });

  it('Binance historicalTrades refusing BINANCE_API_KEY: the error does not carry the key', async () => {
    const prev = process.env.BINANCE_API_KEY;
    process.env.BINANCE_API_KEY = BINANCE_KEY;
    try {
      await assert.rejects(
        fetchBinanceTrades(url, 'BTC/USDT', 1, { apiKey: BINANCE_KEY, retries: 0 }),
        (e: Error) => {
          assert.ok(!e.message.includes(BINANCE_KEY), e.message);
          assert.match(e.message, /401/);
          return true;
        },
      );
    } finally {
      if (prev === undefined) delete process.env.BINANCE_API_KEY;
      else process.env.BINANCE_API_KEY = prev;
    }
  });
});
