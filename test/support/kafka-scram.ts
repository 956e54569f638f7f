import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { alterUserScramCredentialsV0, Connection } from '@platformatic/kafka';

/** The broker's ids of the SCRAM mechanisms (AlterUserScramCredentials), and their hash's name and length. */
const MECHANISMS = [
  { id: 2, hash: 'sha512', bytes: 64 }, // SCRAM-SHA-512
  { id: 1, hash: 'sha256', bytes: 32 }, // SCRAM-SHA-256
] as const;
const ITERATIONS = 4_096; // the broker's minimum

/**
 * Sets `user`'s SCRAM-SHA-512 and -256 password on a running broker through its admin API (AlterUserScramCredentials,
 * as an operator's rotation does: `kafka-configs.sh --alter --add-config 'SCRAM-SHA-512=[password=…]'`), on the
 * listener at `address` (the test broker's plain one). Milliseconds, where `scripts/kafka.sh scram-password` starts a
 * JVM that compiles a source file (seconds, and tens of seconds on a loaded machine: too long to set a password back
 * within a refusal's grace). The salted password is computed here (RFC 5802 Hi(): PBKDF2 with the mechanism's HMAC),
 * so the password itself never travels. One request per mechanism: the broker refuses two alterations of one user in
 * one request.
 */
export async function setScramPassword(address: string, user: string, password: string): Promise<void> {
  const colon = address.lastIndexOf(':');
  const connection = new Connection('cryptocast-test-scram', {
    connectTimeout: 10_000,
    requestTimeout: 30_000,
  });
  try {
    await connection.connect(address.slice(0, colon), Number(address.slice(colon + 1)));
    for (const m of MECHANISMS) {
      const salt = randomBytes(32);
      const saltedPassword = pbkdf2Sync(password, salt, ITERATIONS, m.bytes, m.hash);
      await alterUserScramCredentialsV0.api.async(
        connection,
        [],
        [{ name: user, mechanism: m.id, iterations: ITERATIONS, salt, saltedPassword }],
      );
    }
  } finally {
    await connection.close().catch(() => {});
  }
}
