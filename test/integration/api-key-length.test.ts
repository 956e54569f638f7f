import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { exitedWithin, runCli } from '../support/cli.ts';
import { scratchDir } from '../support/scratch.ts';

/**
 * API keys shorter than MIN_API_KEY_LENGTH (src/api/options.ts) are refused at start by both commands that serve the
 * API, `service api` and `run`, with CC_ERR_CONFIG naming CRYPTOCAST_API_KEYS and never the key. They used to be
 * taken, however short.
 */
const SHORT_KEY = 'abc123xyz';
const LONG_KEY = 'f'.repeat(32);

describe('a short API key at start', () => {
  const dir = scratchDir('cc-api-key-length-');
  const commands: [string, string[]][] = [
    [
      'service api',
      ['service', 'api', '--bus', 'memory', '--store', `duckdb:${join(dir, 'p.duckdb')}`, '--port', '0'],
    ],
    ['run', ['run', '--store', `duckdb:${join(dir, 'r.duckdb')}`, '--port', '0']],
  ];
  for (const [name, args] of commands)
    it(`${name}: refused (exit 2, CC_ERR_CONFIG naming CRYPTOCAST_API_KEYS), the key not printed`, async () => {
      const cli = runCli(args, {
        CRYPTOCAST_API_KEYS: `${LONG_KEY},${SHORT_KEY}`,
        CRYPTOCAST_LOG_LEVEL: 'warn',
      });
      const code = await exitedWithin(cli, 120_000, `${name} with a short key to be refused`);
      const out = cli.stderr();
      assert.equal(code, 2, out);
      assert.match(out, /CC_ERR_CONFIG/);
      assert.match(out, /CRYPTOCAST_API_KEYS: key 2 of 2 has 9 characters/);
      assert.ok(!out.includes(SHORT_KEY), out);
      assert.ok(!out.includes(LONG_KEY), out);
    });
});
