import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';

export const KAFKA_URL = process.env.CRYPTOCAST_TEST_KAFKA ?? 'kafka://127.0.0.1:9092';
const ROOT = join(import.meta.dirname, '..', '..');

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Makes sure the project's real Kafka broker is up (scripts/kafka.sh start is idempotent). */
export async function ensureKafka(): Promise<void> {
  const port = Number(/:(\d+)/.exec(KAFKA_URL)?.[1] ?? 9092);
  if (await portOpen(port)) return;
  execFileSync('bash', [join(ROOT, 'scripts', 'kafka.sh'), 'start'], { stdio: 'inherit' });
}

/** A fresh topic/group namespace so that tests never see each other's (or an earlier run's) data. */
export function uniquePrefix(name: string): string {
  return `test.${name}.${process.pid}.${Date.now().toString(36)}.`;
}

/**
 * Starts `cryptocast service …` processes on the test broker, in the topic namespace `prefix`; every process is
 * added to `children`, for the test to kill at the end.
 */
export function serviceLauncher(
  prefix: string,
  children: ChildProcess[],
  extraEnv: NodeJS.ProcessEnv = {},
): (args: string[], env?: NodeJS.ProcessEnv) => ChildProcess {
  const base = {
    ...process.env,
    ...extraEnv,
    CRYPTOCAST_TOPIC_PREFIX: prefix,
    CRYPTOCAST_LOG_LEVEL: 'warn',
    CRYPTOCAST_BUS: KAFKA_URL,
  };
  return (args, env = {}) => {
    const c = spawn(join(ROOT, 'bin', 'cryptocast'), ['service', ...args], {
      env: { ...base, ...env },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    children.push(c);
    return c;
  };
}
