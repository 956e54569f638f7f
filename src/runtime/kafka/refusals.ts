import { Connection, saslHandshakeV1 } from '@platformatic/kafka';
import type { KafkaSecurity } from '../../config/kafka-security.ts';
import { type CryptocastError, ERR, fail } from '../../core/errors.ts';

/**
 * A Kafka client's failure that says the security settings are wrong, as the catalogue's error a user can act on:
 * CC_ERR_BUS_AUTH ("Kafka authentication failed for user X with mechanism Y at host:port: <the broker's reason>") or
 * CC_ERR_BUS_TLS (a TLS listener reached without TLS or the reverse, a broker certificate not trusted or not for its
 * name); a permission the broker refuses (TOPIC_, GROUP_, CLUSTER_AUTHORIZATION_FAILED: the user's ACLs) is
 * CC_ERR_BUS_AUTH too. Undefined for everything else (a broker away, a timeout): those are waited for.
 *
 * The client (@platformatic/kafka) nests the reason: "Listing topics failed" (MultipleErrors) → "Cannot connect to any
 * broker" → "Connection to host:port failed" (NetworkError, marked retryable) → its `cause`, the AuthenticationError
 * or the TLS socket's error → the broker's ProtocolError. Its own `findErrorBy` does not follow a `cause`, so a refused
 * password was retried for ever as "Cannot connect to any broker"; this walks both the lists and the causes.
 */
export function securityRefusal(
  err: unknown,
  brokers: readonly string[],
  security: KafkaSecurity,
): CryptocastError | undefined {
  for (const { error: e, address } of walk(err)) {
    const at = address ?? brokers.join(',');
    const code = typeof e.code === 'string' ? e.code : '';
    if (typeof e.apiId === 'string' && AUTHORIZATION_FAILED.has(e.apiId)) {
      const said = typeof e.serverErrorMessage === 'string' ? `: ${e.serverErrorMessage}` : '';
      return fail(
        ERR.BUS_AUTH,
        `the Kafka cluster at ${at} refused a permission to user "${security.sasl?.username ?? '(none)'}": ${e.apiId}${said}`,
        {
          cause: err,
          hint: "the user's ACLs must allow this service's topics (read, write, describe, create) and consumer groups",
        },
      );
    }
    if (code === 'PLT_KFK_AUTHENTICATION') {
      const protocol = walk(e)
        .map((n) => n.error)
        .find((n) => typeof n.apiId === 'string');
      const said = typeof protocol?.serverErrorMessage === 'string' ? protocol.serverErrorMessage : undefined;
      const sasl = security.sasl;
      if (protocol?.apiId === 'SASL_AUTHENTICATION_FAILED')
        return fail(
          ERR.BUS_AUTH,
          `Kafka authentication failed for user "${sasl?.username}" with mechanism ${sasl?.mechanism} at ${at}${said ? `: ${said}` : ''}`,
          { cause: err },
        );
      if (protocol?.apiId === 'ILLEGAL_SASL_STATE')
        return fail(
          ERR.BUS_AUTH,
          `the Kafka listener at ${at} takes no SASL (a PLAINTEXT or SSL listener): unset CRYPTOCAST_KAFKA_SASL_MECHANISM, or name the brokers' SASL listener in the bus URL`,
          { cause: err },
        );
      return fail(
        ERR.BUS_AUTH,
        `the Kafka listener at ${at} does not accept SASL mechanism ${sasl?.mechanism}${said ? `: ${said}` : ` (${e.message})`}`,
        {
          cause: err,
          hint: 'set CRYPTOCAST_KAFKA_SASL_MECHANISM to one the listener enables (ask its operator)',
        },
      );
    }
    if (code === 'PLT_KFK_USER' && /requires TLS/i.test(e.message))
      return fail(
        ERR.BUS_TLS,
        `the Kafka listener at ${at} requires TLS, and TLS is off: set CRYPTOCAST_KAFKA_TLS=true`,
        { cause: err },
      );
    if (code === 'PLT_KFK_USER' && /TLS handshake failed/i.test(e.message))
      return fail(
        ERR.BUS_TLS,
        `the Kafka listener at ${at} does not speak TLS (a PLAINTEXT or SASL_PLAINTEXT listener?): unset CRYPTOCAST_KAFKA_TLS, or name the brokers' TLS listener in the bus URL`,
        { cause: err },
      );
    if (CERTIFICATE_REFUSED.has(code))
      return fail(
        ERR.BUS_TLS,
        `the certificate of the Kafka broker at ${at} is refused: ${e.message} (${code})${
          code === 'ERR_TLS_CERT_ALTNAME_INVALID'
            ? ': name the brokers in the bus URL as their certificate does'
            : security.tls?.ca === undefined
              ? ": set CRYPTOCAST_KAFKA_CA_FILE to the CA that signed it (none given: the system's CAs were used)"
              : ': CRYPTOCAST_KAFKA_CA_FILE does not hold the CA that signed it'
        }`,
        { cause: err },
      );
    // The broker ended the handshake with an alert: most often a client certificate it does not accept (mutual TLS).
    if (/^ERR_SSL_.*ALERT/.test(code))
      return fail(
        ERR.BUS_TLS,
        `the Kafka broker at ${at} refused the TLS handshake: ${e.message} (${code})${
          security.tls?.cert === undefined
            ? ': it may require a client certificate (CRYPTOCAST_KAFKA_CERT_FILE and CRYPTOCAST_KAFKA_KEY_FILE)'
            : ': check that the client certificate (CRYPTOCAST_KAFKA_CERT_FILE) is signed by a CA the broker trusts'
        }`,
        { cause: err },
      );
  }
  return undefined;
}

/**
 * A client without SASL at a SASL listener (a forgotten CRYPTOCAST_KAFKA_SASL_* Secret): the broker closes each of its
 * connections at its first request, which the client reports as "Connection closed", like a broker going away; it was
 * waited for, for ever. On that failure, and only without SASL set, the listener is asked which SASL mechanisms it
 * offers (a SaslHandshake, which a broker answers before authentication; a listener without SASL answers
 * ILLEGAL_SASL_STATE): mechanisms offered are CC_ERR_BUS_AUTH naming them. Anything else (no answer, a broker away):
 * undefined, waited for as before.
 */
export async function saslWanted(
  err: unknown,
  brokers: readonly string[],
  security: KafkaSecurity,
): Promise<CryptocastError | undefined> {
  if (security.sasl !== undefined) return undefined;
  const closed = walk(err).find(
    ({ error }) => error.code === 'PLT_KFK_NETWORK' && /Connection closed/i.test(error.message),
  );
  if (closed === undefined) return undefined;
  for (const at of closed.address === undefined ? brokers : [closed.address]) {
    const mechanisms = await offeredMechanisms(at, security).catch(() => undefined);
    if (mechanisms === undefined || mechanisms.length === 0) continue;
    return fail(
      ERR.BUS_AUTH,
      `the Kafka listener at ${at} wants SASL authentication (it offers ${mechanisms.join(', ')}), and none is set: set CRYPTOCAST_KAFKA_SASL_MECHANISM, CRYPTOCAST_KAFKA_SASL_USERNAME and CRYPTOCAST_KAFKA_SASL_PASSWORD`,
      { cause: err, hint: 'in a deployment, the SASL settings come from a Secret: check that it is mounted' },
    );
  }
  return undefined;
}

/** The SASL mechanisms the listener at `address` offers, from one SaslHandshake (5 s at most). */
async function offeredMechanisms(address: string, security: KafkaSecurity): Promise<string[]> {
  const colon = address.lastIndexOf(':');
  const connection = new Connection('cryptocast-sasl-probe', {
    ...(security.tls === undefined ? {} : { tls: { ...security.tls }, tlsServerName: true }),
    connectTimeout: 5_000,
    requestTimeout: 5_000,
  });
  try {
    await connection.connect(address.slice(0, colon), Number(address.slice(colon + 1)));
    // PLAIN or not, the answer lists the listener's mechanisms (an error code only if PLAIN is not among them).
    return (await saslHandshakeV1.api.async(connection, 'PLAIN')).mechanisms;
  } catch (err) {
    const response = (err as { response?: { mechanisms?: string[] } }).response;
    return response?.mechanisms ?? [];
  } finally {
    await connection.close().catch(() => {});
  }
}

/** The broker's answers to a request its ACLs do not allow this user. */
const AUTHORIZATION_FAILED = new Set([
  'TOPIC_AUTHORIZATION_FAILED',
  'GROUP_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
]);

/** Node's codes for a peer certificate that does not verify (OpenSSL's X509_V_ERR names, and the host name check). */
const CERTIFICATE_REFUSED = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

interface Node {
  error: Error & Record<string, unknown>;
  /** `host:port` of the nearest "Connection to host:port failed." above it (or itself). */
  address: string | undefined;
}

/** Every error in `err`'s tree (AggregateError lists and causes), depth first, each with its broker address. */
function walk(err: unknown, address?: string, depth = 0, out: Node[] = []): Node[] {
  if (!(err instanceof Error) || depth > 10) return out;
  const here = /Connection to (\S+) failed/.exec(err.message)?.[1] ?? address;
  out.push({ error: err as Node['error'], address: here });
  for (const e of (err as { errors?: unknown[] }).errors ?? []) walk(e, here, depth + 1, out);
  walk(err.cause, here, depth + 1, out);
  return out;
}
