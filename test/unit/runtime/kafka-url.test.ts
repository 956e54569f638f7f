import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { connectBus } from '../../../src/runtime/connect.ts';
import { KafkaBus } from '../../../src/runtime/kafka/bus.ts';
import { CLI } from '../../support/cli.ts';

/**
 * A Kafka URL never carries credentials (SASL's come from the environment: src/config/kafka-security.ts): one written with a user and password, as
 * for another Kafka client, is refused without quoting the password — the error reaches the terminal, a pod's log and
 * a CI log as it is, and the line-wide redaction cannot see a password once the URL is cut into broker addresses.
 */
describe('Kafka URLs with credentials', () => {
  const password = 'Kf9-pass-of-test';

  for (const url of [
    `kafka://svc:${password}@broker:9092`,
    `kafka://a:9092,svc:${password}@b:9092`,
    `kafka://svc:${password}/x@broker:9092`,
  ])
    it(`refuses ${url.replace(password, '…')} without quoting the password`, () => {
      assert.throws(
        () => KafkaBus.connect(url),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'CC_ERR_CONFIG');
          assert.ok(!err.message.includes(password), err.message);
          assert.match(err.message, /no credentials/);
          return true;
        },
      );
    });

  it('connectBus refuses another scheme without quoting the password', async () => {
    await assert.rejects(
      connectBus(`nats://svc:${password}/x@broker:4222`),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'CC_ERR_CONFIG');
        assert.ok(!err.message.includes(password), err.message);
        return true;
      },
    );
  });

  // From CRYPTOCAST_BUS (a password in the --bus flag is refused before anything runs: credentials-in-flags.test.ts).
  // The setting's own check (a `/` in the password fails it) quoted the value as given, before the bus saw it.
  for (const url of [`kafka://svc:${password}@127.0.0.1:1`, `kafka://svc:${password}/x@127.0.0.1:1`])
    it(`the CLI refuses CRYPTOCAST_BUS=${url.replace(password, '…')} and prints no part of the password (exit 2)`, () => {
      const r = spawnSync(CLI, ['topics', 'create'], {
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, CRYPTOCAST_BUS: url },
      });
      assert.equal(r.status, 2, r.stderr);
      assert.ok(!`${r.stdout}${r.stderr}`.includes(password), r.stderr);
      assert.ok(!`${r.stdout}${r.stderr}`.includes('Kf9'), r.stderr);
      assert.match(r.stderr, /\[CC_ERR_CONFIG\]/);
    });

  it('a URL without credentials still parses', () => {
    assert.deepEqual(KafkaBus.connect('kafka://a:1,b:2').brokers, ['a:1', 'b:2']);
  });
});
