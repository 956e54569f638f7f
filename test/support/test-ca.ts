import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * Throwaway certificates for the TLS tests, made with openssl by scripts/lib/test-ca.sh (the Kafka and PostgreSQL test
 * servers' scripts make theirs with the same functions): a CA, and certificates it signs.
 */
const SCRIPT = join(import.meta.dirname, '..', '..', 'scripts', 'lib', 'test-ca.sh');

/** A CA in `dir` (ca.key, ca.pem); the path of its certificate. */
export function testCa(dir: string, commonName = 'cryptocast test CA'): string {
  execFileSync('bash', [SCRIPT, 'ca', dir, commonName], { stdio: ['ignore', 'ignore', 'pipe'] });
  return join(dir, 'ca.pem');
}

/** A certificate for `commonName` signed by the CA in `dir`, with these extension lines; the paths of its key and certificate. */
export function testCert(
  dir: string,
  name: string,
  commonName: string,
  ...extensions: string[]
): { key: string; cert: string } {
  execFileSync('bash', [SCRIPT, 'cert', dir, name, commonName, ...extensions], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return { key: join(dir, `${name}.key`), cert: join(dir, `${name}.pem`) };
}
