import { ERR, fail } from '../core/errors.ts';
import { urlWithoutCredentials } from '../core/secrets.ts';

/**
 * The brokers of `kafka://host:port[,host:port]` (port 9092 when left out, 1–65535), or CC_ERR_CONFIG naming what is
 * wrong. KafkaBus.connect reads its URL with it, and the CLI checks a --bus flag with it before a command starts.
 */
export function kafkaBrokers(url: string): string[] {
  // SASL credentials come from the environment only (src/config/kafka-security.ts), so a URL never carries them. One
  // written with a user and password (as for another Kafka client) is refused without quoting them: the messages below
  // quote the URL and a broker address, and a password there (`user:pass@host`, no scheme before it, or a `/` in it)
  // escapes the logs' URL redaction.
  if (/^[a-z][a-z0-9+.-]*:\/\/[^?#]*@/i.test(url))
    throw fail(
      ERR.CONFIG,
      `a Kafka URL takes no credentials: ${urlWithoutCredentials(url)} (expected kafka://host:port[,host:port])`,
      {
        hint:
          'give SASL credentials as CRYPTOCAST_KAFKA_SASL_MECHANISM, CRYPTOCAST_KAFKA_SASL_USERNAME and ' +
          'CRYPTOCAST_KAFKA_SASL_PASSWORD (from a secret), and TLS as CRYPTOCAST_KAFKA_TLS=true',
      },
    );
  const m = /^kafka:\/\/([^/?#]+)\/?$/.exec(url);
  if (m === null) throw fail(ERR.CONFIG, `not a Kafka URL: ${url} (expected kafka://host:port[,host:port])`);
  return m[1]!.split(',').map((b) => {
    const hostPort = b.includes(':') ? b : `${b}:9092`;
    const port = Number(hostPort.slice(hostPort.lastIndexOf(':') + 1));
    if (!/^[^:]+:\d{1,5}$/.test(hostPort) || port < 1 || port > 65_535)
      throw fail(ERR.CONFIG, `not a broker address in ${url}: "${b}" (expected host:port, port 1–65535)`);
    return hostPort;
  });
}

/** Why `url` names no transport (`memory`, or a Kafka URL kafkaBrokers reads), or undefined when it does. */
export function busUrlProblem(url: string): string | undefined {
  if (url === 'memory') return undefined;
  // Not quoted as given: a password in it (`user:pa/ss@host`) would escape the logs' line-wide URL redaction.
  if (!url.startsWith('kafka://'))
    return `unknown bus URL "${urlWithoutCredentials(url)}": use "memory" or kafka://host:port`;
  try {
    kafkaBrokers(url);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
