import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { describeKafkaSecurity, kafkaSecurity } from '../../../src/config/kafka-security.ts';
import { CryptocastError } from '../../../src/core/errors.ts';
import { redactSecrets } from '../../../src/core/secrets.ts';
import { KafkaBus } from '../../../src/runtime/kafka/bus.ts';

/**
 * The Kafka security settings (TLS, mutual TLS, SASL) are read from the environment and checked together: a wrong
 * combination is CC_ERR_CONFIG naming the variables, at start, never a connection that fails later; the password is a
 * secret (redacted from every log line) and no message quotes it. Reaching a real broker with them:
 * test/integration/kafka-sasl-ssl.test.ts.
 */
const PASSWORD = 'Sup3r-Secret-Pw';
const dir = mkdtempSync(join(tmpdir(), 'kafka-security-'));
const notPem = join(dir, 'not.pem');
writeFileSync(notPem, 'hello\n');
const damagedPem = join(dir, 'damaged.pem');
writeFileSync(damagedPem, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
const aDirectory = join(dir, 'a-dir');
mkdirSync(aDirectory);

function refused(env: NodeJS.ProcessEnv, message: RegExp): void {
  assert.throws(
    () => kafkaSecurity(env),
    (err: unknown) => {
      assert.ok(err instanceof CryptocastError, String(err));
      assert.equal(err.code, 'CC_ERR_CONFIG');
      assert.equal(err.exitCode, 2);
      assert.match(err.message, message);
      assert.ok(!err.message.includes(PASSWORD), 'the password is never quoted');
      return true;
    },
  );
}

describe('Kafka security settings (src/config/kafka-security.ts)', () => {
  it('none set: plain Kafka, as before', () => {
    assert.deepEqual(kafkaSecurity({}), {});
    assert.equal(describeKafkaSecurity({}), 'PLAINTEXT');
  });

  it('TLS alone: the system CAs; SASL with a mechanism in any case', () => {
    assert.deepEqual(kafkaSecurity({ CRYPTOCAST_KAFKA_TLS: 'true' }), { tls: {} });
    assert.deepEqual(kafkaSecurity({ CRYPTOCAST_KAFKA_TLS: 'false' }), {});
    const s = kafkaSecurity({
      CRYPTOCAST_KAFKA_TLS: 'true',
      CRYPTOCAST_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      CRYPTOCAST_KAFKA_SASL_USERNAME: 'svc',
      CRYPTOCAST_KAFKA_SASL_PASSWORD: PASSWORD,
    });
    assert.deepEqual(s, {
      tls: {},
      sasl: { mechanism: 'SCRAM-SHA-512', username: 'svc', password: PASSWORD },
    });
    assert.equal(describeKafkaSecurity(s), 'SASL_SSL, SCRAM-SHA-512 as svc');
    assert.ok(!describeKafkaSecurity(s).includes(PASSWORD));
  });

  it('an unknown mechanism names the ones taken (and says MSK IAM is not one)', () => {
    refused(
      { CRYPTOCAST_KAFKA_SASL_MECHANISM: 'AWS_MSK_IAM' },
      /^CRYPTOCAST_KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 .*AWS_MSK_IAM.*got "AWS_MSK_IAM"$/,
    );
    refused({ CRYPTOCAST_KAFKA_TLS: 'yes' }, /^CRYPTOCAST_KAFKA_TLS must be true or false, got "yes"$/);
  });

  it('credentials without their other half, or without a mechanism, are refused', () => {
    refused(
      { CRYPTOCAST_KAFKA_SASL_MECHANISM: 'PLAIN', CRYPTOCAST_KAFKA_SASL_PASSWORD: PASSWORD },
      /CRYPTOCAST_KAFKA_SASL_PASSWORD is set without CRYPTOCAST_KAFKA_SASL_USERNAME/,
    );
    refused(
      { CRYPTOCAST_KAFKA_SASL_MECHANISM: 'PLAIN', CRYPTOCAST_KAFKA_SASL_USERNAME: 'svc' },
      /CRYPTOCAST_KAFKA_SASL_USERNAME svc is set without CRYPTOCAST_KAFKA_SASL_PASSWORD/,
    );
    refused(
      { CRYPTOCAST_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256' },
      /SCRAM-SHA-256 needs CRYPTOCAST_KAFKA_SASL_USERNAME and CRYPTOCAST_KAFKA_SASL_PASSWORD/,
    );
    refused(
      { CRYPTOCAST_KAFKA_SASL_USERNAME: 'svc', CRYPTOCAST_KAFKA_SASL_PASSWORD: PASSWORD },
      /CRYPTOCAST_KAFKA_SASL_USERNAME is set without CRYPTOCAST_KAFKA_SASL_MECHANISM/,
    );
    refused(
      { CRYPTOCAST_KAFKA_SASL_PASSWORD: PASSWORD },
      /CRYPTOCAST_KAFKA_SASL_PASSWORD is set without CRYPTOCAST_KAFKA_SASL_MECHANISM/,
    );
  });

  it('TLS files with TLS off, a key without its certificate, a passphrase without a key', () => {
    refused(
      { CRYPTOCAST_KAFKA_CA_FILE: '/etc/ca.pem', CRYPTOCAST_KAFKA_TLS: 'false' },
      /^CRYPTOCAST_KAFKA_CA_FILE set, but TLS to Kafka is off: set CRYPTOCAST_KAFKA_TLS=true$/,
    );
    refused(
      { CRYPTOCAST_KAFKA_TLS: 'true', CRYPTOCAST_KAFKA_KEY_FILE: '/etc/key.pem' },
      /mutual TLS needs both CRYPTOCAST_KAFKA_CERT_FILE and CRYPTOCAST_KAFKA_KEY_FILE; only the key is set/,
    );
    refused(
      { CRYPTOCAST_KAFKA_TLS: 'true', CRYPTOCAST_KAFKA_KEY_PASSWORD: PASSWORD },
      /CRYPTOCAST_KAFKA_KEY_PASSWORD is set without CRYPTOCAST_KAFKA_KEY_FILE/,
    );
  });

  it('a CA file that is missing, a directory, not PEM or damaged: named, with why', () => {
    const tls = { CRYPTOCAST_KAFKA_TLS: 'true' };
    refused(
      { ...tls, CRYPTOCAST_KAFKA_CA_FILE: join(dir, 'missing.pem') },
      /^CRYPTOCAST_KAFKA_CA_FILE: cannot read .*missing\.pem \(no such file\)$/,
    );
    refused(
      { ...tls, CRYPTOCAST_KAFKA_CA_FILE: aDirectory },
      /^CRYPTOCAST_KAFKA_CA_FILE: cannot read .*a-dir \(a directory\)$/,
    );
    refused(
      { ...tls, CRYPTOCAST_KAFKA_CA_FILE: notPem },
      /^CRYPTOCAST_KAFKA_CA_FILE: .*not\.pem holds no PEM certificate/,
    );
    refused(
      { ...tls, CRYPTOCAST_KAFKA_CA_FILE: damagedPem },
      /^CRYPTOCAST_KAFKA_CA_FILE: certificate 1 of 1 in .*damaged\.pem cannot be read \(/,
    );
  });

  it('the password and the key passphrase are secrets: redacted from every log line', () => {
    const env = {
      CRYPTOCAST_KAFKA_SASL_PASSWORD: PASSWORD,
      CRYPTOCAST_KAFKA_KEY_PASSWORD: 'key-passphrase-1',
    };
    assert.equal(
      redactSecrets(`login ${PASSWORD} with key-passphrase-1`, env),
      'login [redacted] with [redacted]',
    );
  });

  it('the bus builds its clients with TLS (with SNI) and SASL (each kind on a real broker: the integration test)', () => {
    const security = kafkaSecurity({
      CRYPTOCAST_KAFKA_TLS: 'true',
      CRYPTOCAST_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256',
      CRYPTOCAST_KAFKA_SASL_USERNAME: 'svc',
      CRYPTOCAST_KAFKA_SASL_PASSWORD: PASSWORD,
    });
    const bus = new KafkaBus({ brokers: ['b-1.example:9096'], security, logger: pino({ level: 'silent' }) });
    assert.deepEqual(bus.connectionOptions(), {
      tls: {},
      tlsServerName: true,
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'svc', password: PASSWORD },
    });
    assert.deepEqual(new KafkaBus({ brokers: ['b:9092'], security: {} }).connectionOptions(), {});
  });
});
