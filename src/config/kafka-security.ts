import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ERR, fail } from '../core/errors.ts';
import { secret, setting } from './env.ts';

/**
 * How the Kafka clients reach a managed Kafka (MSK, Confluent Cloud, Aiven, Strimzi with authentication): TLS, and
 * SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) over it, from the environment only. The bus URL stays
 * `kafka://host:port[,host:port]`: the security settings apply to every Kafka client of the process (the services,
 * `topics create`, `dlq`), and credentials never travel in a URL or a flag (they would land in a shell history, a
 * manifest or a log).
 *
 * The settings are checked together when the bus is built, so that a wrong combination fails at start with
 * CC_ERR_CONFIG naming the variables (a password without a user name, a CA file with TLS off, a key without its
 * certificate, a file that cannot be read or holds no PEM), never as a connection that fails later for a reason the
 * broker words.
 */
export type SaslMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512';

export interface KafkaSecurity {
  /** TLS to every broker: the CA bundle (none: Node's CAs), and a client certificate and key for mutual TLS. */
  tls?: { ca?: string; cert?: string; key?: string; passphrase?: string };
  sasl?: { mechanism: SaslMechanism; username: string; password: string };
}

/** What the security settings of `env` ask for, checked (see above), with the files they name read. */
export function kafkaSecurity(env: NodeJS.ProcessEnv = process.env): KafkaSecurity {
  const out: KafkaSecurity = {};
  const tlsOn = setting('CRYPTOCAST_KAFKA_TLS', env) ?? false;
  const caFile = setting('CRYPTOCAST_KAFKA_CA_FILE', env);
  const certFile = setting('CRYPTOCAST_KAFKA_CERT_FILE', env);
  const keyFile = setting('CRYPTOCAST_KAFKA_KEY_FILE', env);
  const passphrase = secret('CRYPTOCAST_KAFKA_KEY_PASSWORD', env);
  if (!tlsOn) {
    const given = (
      [
        ['CRYPTOCAST_KAFKA_CA_FILE', caFile],
        ['CRYPTOCAST_KAFKA_CERT_FILE', certFile],
        ['CRYPTOCAST_KAFKA_KEY_FILE', keyFile],
        ['CRYPTOCAST_KAFKA_KEY_PASSWORD', passphrase],
      ] as const
    ).filter(([, value]) => value !== undefined);
    if (given.length > 0)
      throw fail(
        ERR.CONFIG,
        `${given.map(([name]) => name).join(', ')} set, but TLS to Kafka is off: set CRYPTOCAST_KAFKA_TLS=true`,
      );
  } else {
    if ((certFile === undefined) !== (keyFile === undefined))
      throw fail(
        ERR.CONFIG,
        `mutual TLS needs both CRYPTOCAST_KAFKA_CERT_FILE and CRYPTOCAST_KAFKA_KEY_FILE; only ${certFile === undefined ? 'the key' : 'the certificate'} is set`,
      );
    if (passphrase !== undefined && keyFile === undefined)
      throw fail(ERR.CONFIG, 'CRYPTOCAST_KAFKA_KEY_PASSWORD is set without CRYPTOCAST_KAFKA_KEY_FILE');
    const tls: NonNullable<KafkaSecurity['tls']> = {};
    if (caFile !== undefined) tls.ca = pemFile('CRYPTOCAST_KAFKA_CA_FILE', caFile, 'CERTIFICATE');
    if (certFile !== undefined) tls.cert = pemFile('CRYPTOCAST_KAFKA_CERT_FILE', certFile, 'CERTIFICATE');
    if (keyFile !== undefined) tls.key = pemFile('CRYPTOCAST_KAFKA_KEY_FILE', keyFile, 'PRIVATE KEY');
    if (passphrase !== undefined) tls.passphrase = passphrase;
    try {
      // What the TLS layer will make of them, now: a damaged PEM, a key that is not the certificate's, a wrong passphrase.
      createSecureContext(tls);
    } catch (err) {
      throw fail(
        ERR.CONFIG,
        `the Kafka TLS files (${[caFile, certFile, keyFile].filter(Boolean).join(', ')}) cannot be used: ${(err as Error).message}`,
        { cause: err },
      );
    }
    out.tls = tls;
  }

  const mechanism = setting('CRYPTOCAST_KAFKA_SASL_MECHANISM', env);
  const username = setting('CRYPTOCAST_KAFKA_SASL_USERNAME', env);
  const password = secret('CRYPTOCAST_KAFKA_SASL_PASSWORD', env);
  if (mechanism === undefined) {
    if (username !== undefined || password !== undefined)
      throw fail(
        ERR.CONFIG,
        `${username !== undefined ? 'CRYPTOCAST_KAFKA_SASL_USERNAME' : 'CRYPTOCAST_KAFKA_SASL_PASSWORD'} is set without CRYPTOCAST_KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)`,
      );
    return out;
  }
  if (username === undefined)
    throw fail(
      ERR.CONFIG,
      password === undefined
        ? `CRYPTOCAST_KAFKA_SASL_MECHANISM ${mechanism} needs CRYPTOCAST_KAFKA_SASL_USERNAME and CRYPTOCAST_KAFKA_SASL_PASSWORD`
        : 'CRYPTOCAST_KAFKA_SASL_PASSWORD is set without CRYPTOCAST_KAFKA_SASL_USERNAME',
    );
  if (password === undefined)
    throw fail(
      ERR.CONFIG,
      `CRYPTOCAST_KAFKA_SASL_USERNAME ${username} is set without CRYPTOCAST_KAFKA_SASL_PASSWORD`,
    );
  out.sasl = { mechanism, username, password };
  return out;
}

/** The transport as Kafka names it (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), with the mechanism and user: for logs. */
export function describeKafkaSecurity(s: KafkaSecurity): string {
  const parts = [`${s.sasl ? 'SASL_' : ''}${s.tls ? 'SSL' : 'PLAINTEXT'}`];
  if (s.sasl) parts.push(`${s.sasl.mechanism} as ${s.sasl.username}`);
  if (s.tls?.cert) parts.push('client certificate');
  return parts.join(', ');
}

/** The PEM text of `file`, or CC_ERR_CONFIG naming `variable`, the file and why (missing, unreadable, not PEM). */
function pemFile(variable: string, file: string, label: 'CERTIFICATE' | 'PRIVATE KEY'): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'a directory'
            : (err as Error).message;
    throw fail(ERR.CONFIG, `${variable}: cannot read ${file} (${why})`, { cause: err });
  }
  // `PRIVATE KEY` also matches `RSA PRIVATE KEY`, `EC PRIVATE KEY` and `ENCRYPTED PRIVATE KEY`.
  if (!new RegExp(`-----BEGIN [A-Z ]*${label}-----`).test(text))
    throw fail(
      ERR.CONFIG,
      `${variable}: ${file} holds no PEM ${label.toLowerCase()} (-----BEGIN ${label}-----)`,
    );
  if (label === 'CERTIFICATE') {
    // Each certificate parsed: the TLS layer skips a CA it cannot read without a word, and the broker's would then
    // be refused as "self-signed" or "unable to get issuer".
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    blocks.forEach((block, i) => {
      try {
        new X509Certificate(block);
      } catch (err) {
        throw fail(
          ERR.CONFIG,
          `${variable}: certificate ${i + 1} of ${blocks.length} in ${file} cannot be read (${(err as Error).message})`,
          { cause: err },
        );
      }
    });
  }
  return text;
}
