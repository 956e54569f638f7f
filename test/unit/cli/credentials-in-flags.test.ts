import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { CLI } from '../../support/cli.ts';

/**
 * A password never comes in as a command-line flag: an argument is readable by every user of the machine (`ps`,
 * /proc/PID/cmdline) for as long as the process runs, and stays in the shell's history. A URL flag with a password is
 * refused before anything starts (exit 2), the password not quoted; the same URL from its environment variable works.
 */
const PASSWORD = 'Cl9-pass-of-test';
const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(CLI, args, { encoding: 'utf8', timeout: 90_000, env: { ...process.env, ...env } });

describe('credentials in command-line flags', () => {
  for (const [args, variable] of [
    [['models', 'list', '--registry', `mlflow+http://ops:${PASSWORD}@127.0.0.1:1`], 'CRYPTOCAST_REGISTRY'],
    [
      ['features', '--candles', '/nonexistent', '--store', `postgres://cc:${PASSWORD}@127.0.0.1:1/db`],
      'CRYPTOCAST_STORE_BACKFILL',
    ],
    [
      ['service', 'api', '--bus', 'memory', '--store', `postgres://cc:${PASSWORD}@127.0.0.1:1/db`],
      'CRYPTOCAST_STORE',
    ],
  ] as const)
    it(`${args.join(' ').replace(PASSWORD, '…')}: refused, exit 2, pointing to ${variable}`, () => {
      const r = run([...args]);
      assert.equal(r.status, 2, r.stderr);
      assert.ok(!`${r.stdout}${r.stderr}`.includes(PASSWORD), r.stderr);
      assert.match(r.stderr, /password.*command line.*\[CC_ERR_USAGE\]/);
      assert.match(r.stderr, new RegExp(variable));
    });

  // A flag whose value check refuses it first (a Kafka URL takes no credentials): commander's message quotes the value.
  it('topics create --bus kafka://svc:…@host: refused, exit 2, the value quoted without its password', () => {
    const r = run(['topics', 'create', '--bus', `kafka://svc:${PASSWORD}@127.0.0.1:1`]);
    assert.equal(r.status, 2, r.stderr);
    assert.ok(!`${r.stdout}${r.stderr}`.includes(PASSWORD), r.stderr);
    assert.match(r.stderr, /--bus.*no credentials.*\[CC_ERR_USAGE\]/);
  });

  it('the same URL from the environment is taken (the registry is then tried: unreachable, exit 1)', () => {
    const r = run(['models', 'list'], { CRYPTOCAST_REGISTRY: `mlflow+http://ops:${PASSWORD}@127.0.0.1:1` });
    assert.equal(r.status, 1, r.stderr);
    assert.ok(!`${r.stdout}${r.stderr}`.includes(PASSWORD), r.stderr);
    assert.match(r.stderr, /MLflow at http:\/\/127\.0\.0\.1:1 is unreachable/);
  });

  it('a URL with a user and no password is a flag like any other', () => {
    const r = run(['models', 'list', '--registry', 'mlflow+http://ops@127.0.0.1:1']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /is unreachable/);
  });
});
