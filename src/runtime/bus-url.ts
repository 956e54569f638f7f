import { ERR, fail } from '../core/errors.ts';

/**
 * The brokers of `kafka://host:port[,host:port]` (port 9092 when left out, 1–65535), or CC_ERR_CONFIG naming what is
 * wrong. KafkaBus.connect reads its URL with it, and the CLI checks a --bus flag with it before a command starts.
 */
export function kafkaBrokers(url: string): string[] {
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
  if (!url.startsWith('kafka://')) return `unknown bus URL "${url}": use "memory" or kafka://host:port`;
  try {
    kafkaBrokers(url);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
