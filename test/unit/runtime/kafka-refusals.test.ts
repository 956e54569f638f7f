import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AuthenticationError,
  MultipleErrors,
  NetworkError,
  ProtocolError,
  TimeoutError,
  UserError,
} from '@platformatic/kafka';
import type { KafkaSecurity } from '../../../src/config/kafka-security.ts';
import { securityRefusal } from '../../../src/runtime/kafka/refusals.ts';

/**
 * The client's failures that say a security setting is wrong, as the catalogue's errors (src/runtime/kafka/refusals.ts),
 * on error trees shaped as @platformatic/kafka nests them (seen on a real broker: test/integration/kafka-sasl-ssl.test.ts):
 * the reason sits in the `cause` of a retryable "Connection to host:port failed", which the client's own findErrorBy
 * does not look into.
 */
const SCRAM: KafkaSecurity = {
  tls: {},
  sasl: { mechanism: 'SCRAM-SHA-512', username: 'svc', password: 'Sup3r-Secret-Pw' },
};

/** "Listing topics failed." → "Cannot connect to any broker." → "Connection to b-1.example:9096 failed." → `cause`. */
function connectionFailed(cause: Error): Error {
  return new MultipleErrors('Listing topics failed.', [
    new MultipleErrors('Cannot connect to any broker.', [
      new NetworkError('Connection to b-1.example:9096 failed.', { cause }),
    ]),
  ]);
}

const saslFailed = (apiId: string, said: string | null) =>
  connectionFailed(
    new AuthenticationError('SASL authentication failed.', {
      cause: new MultipleErrors('Received response with error while executing API SaslAuthenticate(v2)', [
        new ProtocolError(apiId, said),
      ]),
    }),
  );

describe('securityRefusal: what a wrong Kafka security setting looks like to a user', () => {
  it('refused credentials: authentication failed for the user with the mechanism, at the broker, with its reason', () => {
    const err = securityRefusal(
      saslFailed('SASL_AUTHENTICATION_FAILED', 'invalid credentials with SASL mechanism SCRAM-SHA-512'),
      ['b-1.example:9096'],
      SCRAM,
    );
    assert.equal(err?.code, 'CC_ERR_BUS_AUTH');
    assert.equal(err?.exitCode, 2);
    assert.equal(
      err?.message,
      'Kafka authentication failed for user "svc" with mechanism SCRAM-SHA-512 at b-1.example:9096: invalid credentials with SASL mechanism SCRAM-SHA-512',
    );
    assert.ok(!err?.message.includes('Sup3r-Secret-Pw'));
  });

  it('a listener without SASL, and one without the mechanism', () => {
    assert.match(
      securityRefusal(saslFailed('ILLEGAL_SASL_STATE', null), [], SCRAM)?.message ?? '',
      /listener at b-1\.example:9096 takes no SASL/,
    );
    const other = securityRefusal(
      saslFailed('UNSUPPORTED_SASL_MECHANISM', 'Unsupported SASL mechanism SCRAM-SHA-512'),
      [],
      SCRAM,
    );
    assert.equal(other?.code, 'CC_ERR_BUS_AUTH');
    assert.match(other!.message, /does not accept SASL mechanism SCRAM-SHA-512: Unsupported/);
  });

  it('TLS: required and off, absent at the listener, a certificate not trusted or for another name', () => {
    const requires = securityRefusal(
      new MultipleErrors('Listing topics failed.', [new UserError('Broker requires TLS.')]),
      ['b-1.example:9096'],
      {},
    );
    assert.equal(requires?.code, 'CC_ERR_BUS_TLS');
    assert.match(
      requires!.message,
      /at b-1\.example:9096 requires TLS, and TLS is off: set CRYPTOCAST_KAFKA_TLS=true/,
    );
    const plain = securityRefusal(
      connectionFailed(new UserError('TLS handshake failed. Please verify the broker supports TLS.')),
      [],
      SCRAM,
    );
    assert.match(plain!.message, /at b-1\.example:9096 does not speak TLS/);
    const untrusted = Object.assign(new Error('self-signed certificate in certificate chain'), {
      code: 'SELF_SIGNED_CERT_IN_CHAIN',
    });
    assert.match(
      securityRefusal(connectionFailed(untrusted), [], SCRAM)!.message,
      /certificate of the Kafka broker at b-1\.example:9096 is refused: .*set CRYPTOCAST_KAFKA_CA_FILE/,
    );
    const otherName = Object.assign(new Error("Hostname/IP does not match certificate's altnames"), {
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
    assert.match(
      securityRefusal(connectionFailed(otherName), [], { tls: { ca: 'x' } })!.message,
      /name the brokers in the bus URL as their certificate does/,
    );
  });

  it("a permission the broker's ACLs refuse (topic, group, cluster): CC_ERR_BUS_AUTH with the broker's answer", () => {
    for (const apiId of [
      'TOPIC_AUTHORIZATION_FAILED',
      'GROUP_AUTHORIZATION_FAILED',
      'CLUSTER_AUTHORIZATION_FAILED',
    ]) {
      // As the client reports a response with an error: a list of the broker's answers.
      const denied = new MultipleErrors('Received response with error while executing API Fetch(v12)', [
        new ProtocolError(apiId, 'Not authorized to access topics: [trades]'),
      ]);
      const err = securityRefusal(denied, ['b-1.example:9096'], SCRAM);
      assert.equal(err?.code, 'CC_ERR_BUS_AUTH', apiId);
      assert.match(err!.message, new RegExp(`refused a permission to user "svc": ${apiId}: Not authorized`));
      assert.match(err!.hint ?? '', /ACLs/);
    }
  });

  it('a broker that is away or slow is not a setting: undefined (waited for)', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9092'), { code: 'ECONNREFUSED' });
    assert.equal(securityRefusal(connectionFailed(refused), [], SCRAM), undefined);
    assert.equal(securityRefusal(new TimeoutError('Request timed out'), [], SCRAM), undefined);
    assert.equal(securityRefusal('not an error', [], SCRAM), undefined);
  });
});
