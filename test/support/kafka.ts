import { execFileSync } from 'node:child_process';
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
