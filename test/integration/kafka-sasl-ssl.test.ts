import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { type KafkaSecurity, kafkaSecurity } from '../../src/config/kafka-security.ts';
import { CryptocastError } from '../../src/core/errors.ts';
import type { Delivered } from '../../src/runtime/bus.ts';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import { topics } from '../../src/schemas/topics.ts';
import type { TradeEvent } from '../../src/schemas/trade.ts';
import { exitedWithin, runCli } from '../support/cli.ts';
import { T0, trade } from '../support/factories.ts';
import { uniquePrefix } from '../support/kafka.ts';
import { setScramPassword } from '../support/kafka-scram.ts';
import { freePort } from '../support/ports.ts';
import { waitFor } from '../support/wait.ts';

/**
 * Kafka as a managed one is reached: a real broker (scripts/kafka.sh) with a SASL_SSL listener whose certificates
 * the script makes at start and whose SCRAM users it writes when it formats the storage. Through the bus, over
 * SASL_SSL with SCRAM-SHA-512 (and a client certificate: mutual TLS), every kind of client the project builds works
 * (admin: topics; producer: publish; a group member and its fetcher: subscribe; raw fetchers: readTail); a wrong
 * password ends a service at once with "authentication failed for user X with mechanism Y" (no retry loop, no stack,
 * no password), and one changed under a running service ends it only after CRYPTOCAST_KAFKA_REFUSED_FOR_MS; a client without TLS, or without the CA, is told so. One broker for the file, on ports of its own
 * (free ones, or CRYPTOCAST_TEST_KAFKA_SASL_PORTS=plain,controller,sasl_ssl).
 */
const ROOT = join(import.meta.dirname, '..', '..');
const USER = 'cryptocast';
const PASSWORD =
  randomBytes(18)
    .toString('base64')
    .replace(/[^A-Za-z0-9]/g, '') || 'Fallback0password';
const quiet = pino({ level: 'silent' });

async function ports(): Promise<[number, number, number]> {
  const given = process.env.CRYPTOCAST_TEST_KAFKA_SASL_PORTS?.split(',').map(Number);
  if (given !== undefined && given.length === 3 && given.every((p) => p > 0))
    return given as [number, number, number];
  return [await freePort(), await freePort(), await freePort()];
}

describe('Kafka over SASL_SSL (TLS + SCRAM), from the environment', () => {
  let brokerEnv: NodeJS.ProcessEnv;
  let saslUrl = '';
  let plainUrl = '';
  let tlsDir = '';
  const buses: KafkaBus[] = [];
  const prefix = uniquePrefix('sasl-ssl');
  /** The settings a deployment gives a service: every variable as the environment holds it. */
  const secureEnv = (over: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    CRYPTOCAST_KAFKA_TLS: 'true',
    CRYPTOCAST_KAFKA_CA_FILE: join(tlsDir, 'ca.pem'),
    CRYPTOCAST_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
    CRYPTOCAST_KAFKA_SASL_USERNAME: USER,
    CRYPTOCAST_KAFKA_SASL_PASSWORD: PASSWORD,
    ...over,
  });
  const bus = (url: string, security: KafkaSecurity) => {
    const b = KafkaBus.connect(url, { topicPrefix: prefix, security, logger: quiet });
    buses.push(b);
    return b;
  };

  before(() =>
    ports().then(([plain, controller, sasl]) => {
      const data = join(ROOT, '.data', `kafka-sasl-${process.pid}-${sasl}`);
      tlsDir = join(data, 'tls');
      // The name the broker's certificate is for (and the one it advertises on that listener).
      saslUrl = `kafka://localhost:${sasl}`;
      plainUrl = `kafka://127.0.0.1:${plain}`;
      brokerEnv = {
        ...process.env,
        KAFKA_PORT: String(plain),
        KAFKA_CONTROLLER_PORT: String(controller),
        KAFKA_SASL_SSL_PORT: String(sasl),
        KAFKA_SASL_USER: USER,
        KAFKA_SASL_PASSWORD: PASSWORD,
        KAFKA_DATA_DIR: data,
        KAFKA_HEAP: '512m',
        // Clients log in again every few seconds (KIP-368): a password changed on the broker reaches a running service.
        KAFKA_SASL_REAUTH_MS: '5000',
      };
      execFileSync('bash', [join(ROOT, 'scripts', 'kafka.sh'), 'start'], {
        env: brokerEnv,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
    }),
  );
  after(async () => {
    for (const b of buses) await b.close().catch(() => {});
    if (brokerEnv === undefined) return;
    execFileSync('bash', [join(ROOT, 'scripts', 'kafka.sh'), 'reset'], {
      env: brokerEnv,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    rmSync(`${brokerEnv.KAFKA_DATA_DIR}.lock`, { force: true });
  });

  it('SCRAM-SHA-512 over TLS with a client certificate: topics, publish, a consumer group and reads all work', async () => {
    const security = kafkaSecurity(
      secureEnv({
        CRYPTOCAST_KAFKA_CERT_FILE: join(tlsDir, 'client.pem'),
        CRYPTOCAST_KAFKA_KEY_FILE: join(tlsDir, 'client.key'),
      }),
    );
    assert.ok(security.tls?.cert !== undefined && security.sasl?.mechanism === 'SCRAM-SHA-512');
    const b = bus(saslUrl, security);
    const values: TradeEvent[] = Array.from({ length: 200 }, (_, i) =>
      trade({ ts: T0 + i * 1_000, price: 100 + i, pair: i % 2 === 0 ? 'BTC/USD' : 'ETH/USD' }),
    );
    await b.publish(topics.trades, values);
    const got: Delivered<TradeEvent>[] = [];
    const sub = await b.subscribe({
      topic: topics.trades,
      group: 'sasl-readers',
      from: 'earliest',
      service: 'test',
      handle: (batch) => {
        got.push(...batch.records);
        return undefined;
      },
    });
    await waitFor(
      'the 200 trades through the consumer group',
      () => got.length,
      (n) => n >= 200,
      { timeoutMs: 60_000 },
    );
    await sub.stop();
    assert.deepEqual(
      got.map((r) => (r.value as { tradeId: string }).tradeId).sort(),
      values.map((v) => (v as { tradeId: string }).tradeId).sort(),
    );
    const tail = await b.readTail(topics.trades, 1_000);
    assert.equal(tail.length, 200);
    assert.equal(await b.groupLag(topics.trades, 'sasl-readers'), 0);
  });

  it('SCRAM-SHA-256 and PLAIN log in too (TLS only, no client certificate)', async () => {
    for (const mechanism of ['SCRAM-SHA-256', 'PLAIN']) {
      const b = bus(saslUrl, kafkaSecurity(secureEnv({ CRYPTOCAST_KAFKA_SASL_MECHANISM: mechanism })));
      await b.ensureTopics([topics.dlq]);
      assert.deepEqual(await b.readTail(topics.dlq, 10), [], mechanism);
    }
  });

  it('a wrong password ends the service at once: authentication failed for the user with the mechanism, exit 2', async () => {
    const wrong = `Wrong${PASSWORD}`;
    const run = runCli(['service', 'candles', '--bus', saslUrl], {
      ...secureEnv({ CRYPTOCAST_KAFKA_SASL_PASSWORD: wrong }),
      CRYPTOCAST_TOPIC_PREFIX: prefix,
      CRYPTOCAST_LOG_LEVEL: 'warn',
    });
    // Not a retry loop (the broker is up: waiting does not mend a password), so it ends well within the minute.
    const code = await exitedWithin(run, 60_000, 'the candle service to end on refused credentials');
    const stderr = run.stderr();
    assert.equal(code, 2, stderr);
    assert.match(
      stderr,
      new RegExp(
        `^cryptocast: Kafka authentication failed for user "${USER}" with mechanism SCRAM-SHA-512 at localhost:\\d+: .*\\[CC_ERR_BUS_AUTH\\]$`,
        'm',
      ),
    );
    assert.match(stderr, /hint: check CRYPTOCAST_KAFKA_SASL_USERNAME/);
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
    assert.doesNotMatch(stderr, /waiting for it/, 'not retried as a broker that is away');
    assert.ok(!stderr.includes(wrong), 'the password is not printed');
  });

  it('a client without TLS at the TLS listener, and one without the CA, are told what to set', async () => {
    const plain = bus(saslUrl, {});
    const noTls = await plain.ensureTopics([topics.dlq]).then(
      () => assert.fail('a plaintext client was let in'),
      (err: unknown) => err,
    );
    assert.ok(noTls instanceof CryptocastError, String(noTls));
    assert.equal(noTls.code, 'CC_ERR_BUS_TLS');
    assert.match(noTls.message, /listener at .* requires TLS, and TLS is off: set CRYPTOCAST_KAFKA_TLS=true/);

    const noCa = bus(saslUrl, kafkaSecurity(secureEnv({ CRYPTOCAST_KAFKA_CA_FILE: '' })));
    const untrusted = await noCa.ensureTopics([topics.dlq]).then(
      () => assert.fail('a certificate from an unknown CA was trusted'),
      (err: unknown) => err,
    );
    assert.ok(untrusted instanceof CryptocastError, String(untrusted));
    assert.equal(untrusted.code, 'CC_ERR_BUS_TLS');
    assert.match(
      untrusted.message,
      /certificate of the Kafka broker at .* is refused: .*CRYPTOCAST_KAFKA_CA_FILE/,
    );
  });

  it('`topics create` (the CLI) over SASL_SSL, and TLS at the plain listener refused with its reason', async () => {
    const ok = runCli(['topics', 'create', '--bus', saslUrl], {
      ...secureEnv(),
      CRYPTOCAST_TOPIC_PREFIX: prefix,
      CRYPTOCAST_LOG_LEVEL: 'warn',
    });
    assert.equal(await exitedWithin(ok, 90_000, 'topics create over SASL_SSL'), 0, ok.stderr());
    const tlsAtPlain = runCli(['topics', 'create', '--bus', plainUrl, '--timeout', '60s'], {
      CRYPTOCAST_KAFKA_TLS: 'true',
      CRYPTOCAST_TOPIC_PREFIX: prefix,
      CRYPTOCAST_LOG_LEVEL: 'warn',
    });
    assert.equal(await exitedWithin(tlsAtPlain, 90_000, 'topics create with TLS at the plain port'), 2);
    assert.match(tlsAtPlain.stderr(), /does not speak TLS .*\[CC_ERR_BUS_TLS\]/);
  });

  it('TLS without SASL at the SASL_SSL listener (a forgotten SASL Secret) ends the service: the listener wants SASL', async () => {
    const env = secureEnv();
    delete env.CRYPTOCAST_KAFKA_SASL_MECHANISM;
    delete env.CRYPTOCAST_KAFKA_SASL_USERNAME;
    delete env.CRYPTOCAST_KAFKA_SASL_PASSWORD;
    const run = runCli(['service', 'candles', '--bus', saslUrl], {
      ...env,
      CRYPTOCAST_TOPIC_PREFIX: prefix,
      CRYPTOCAST_LOG_LEVEL: 'warn',
    });
    // The broker answers (it closes each connection that skips SASL): not waited for as a broker that is away.
    const code = await exitedWithin(run, 60_000, 'the candle service to end at a SASL listener without SASL');
    const stderr = run.stderr();
    assert.equal(code, 2, stderr);
    assert.match(
      stderr,
      /^cryptocast: the Kafka listener at localhost:\d+ wants SASL authentication \(it offers SCRAM-SHA-512.*\), and none is set: .*CRYPTOCAST_KAFKA_SASL_MECHANISM.*\[CC_ERR_BUS_AUTH\]$/m,
    );
    assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
  });

  // Last two: they change the user's password (and set it back), through the broker's admin API as a rotation does.
  const setPassword = (password: string) =>
    setScramPassword(plainUrl.slice('kafka://'.length), USER, password);
  /** The JSON log lines of a service (its stderr) whose message starts with `msg`. */
  const logLines = (stderr: string, msg: string) =>
    stderr
      .split('\n')
      .filter((l) => l.startsWith('{') && l.includes(`"msg":"${msg}`))
      .map((l) => JSON.parse(l) as { time: number; code?: string; path?: string });

  it('a refusal that clears within CRYPTOCAST_KAFKA_REFUSED_FOR_MS (the password changed and set back) leaves the service running, nothing lost', async (t) => {
    // Long next to what the change and the change back take here (the admin API: milliseconds; the detection of the
    // refusal in the log and the back-off of the retrying paths: seconds, tens of them on a loaded machine).
    const graceMs = 60_000;
    const graced = uniquePrefix('sasl-grace');
    const plain = KafkaBus.connect(plainUrl, { topicPrefix: graced, logger: quiet });
    buses.push(plain);
    await plain.ensureTopics([topics.trades, topics.candles, topics.dlq]);
    const run = runCli(['service', 'candles', '--bus', saslUrl], {
      ...secureEnv(),
      CRYPTOCAST_TOPIC_PREFIX: graced,
      CRYPTOCAST_LOG_LEVEL: 'info',
      CRYPTOCAST_KAFKA_REFUSED_FOR_MS: String(graceMs),
    });
    const running = () => run.child.exitCode === null;
    // One trade every 10 s for 5 minutes: minutes 0 to 3 close (the candle grace is 5 s), the first 12 before the
    // refusal, the rest while the service is refused.
    const trades = Array.from({ length: 30 }, (_, i) => trade({ ts: T0 + i * 10_000, price: 100 + i }));
    /** The BTC/USD candles' minutes on the topic (the service commits a trade once its minute's candle is out). */
    const candleMinutes = async () =>
      new Set(
        (await plain.readTail(topics.candles, 100))
          .filter((c) => c.value.pair === 'BTC/USD')
          .map((c) => (c.value.windowStart - T0) / 60_000),
      );
    const candlesOut = (what: string, minutes: number) =>
      waitFor(
        what,
        async () => (running() ? (await candleMinutes()).size : 'exited'),
        (n) => n === 'exited' || n >= minutes,
        { timeoutMs: 120_000, everyMs: 500 },
      );
    try {
      await waitFor(
        'the candle service to run',
        () => run.stderr().includes('"msg":"running"') || !running(),
        (ok) => ok,
        { timeoutMs: 90_000 },
      );
      await plain.publish(topics.trades, trades.slice(0, 12));
      await candlesOut('the candle of minute 0', 1);
      assert.ok(running(), run.stderr());

      let started = Date.now();
      await setPassword(`Rotated${PASSWORD}`);
      t.diagnostic(`password changed through the admin API in ${Date.now() - started} ms`);
      // Its connections log in again within KAFKA_SASL_REAUTH_MS (5 s): refused, said at once, the service retrying.
      await waitFor(
        'the first refusal in the log',
        () => logLines(run.stderr(), 'Kafka refused this client: retrying').length > 0 || !running(),
        (ok) => ok,
        { timeoutMs: 90_000 },
      );
      assert.ok(running(), run.stderr());
      // Trades arriving while it is refused: they wait in Kafka.
      await plain.publish(topics.trades, trades.slice(12));
      started = Date.now();
      await setPassword(PASSWORD);
      t.diagnostic(`password set back through the admin API in ${Date.now() - started} ms`);
      const [first] = logLines(run.stderr(), 'Kafka refused this client: retrying');
      t.diagnostic(`set back ${Date.now() - first!.time} ms after the first refusal (grace ${graceMs} ms)`);

      await waitFor(
        'the client accepted again',
        () => run.stderr().includes('"msg":"Kafka accepts this client again"') || !running(),
        (ok) => ok,
        { timeoutMs: 120_000 },
      );
      // Nothing lost: the candles of the minutes traded before and during the refusal.
      await candlesOut('the candles of minutes 0 to 3', 4);
      assert.ok(running(), run.stderr());
      assert.doesNotMatch(run.stderr(), /refused this client for good/);
      assert.deepEqual([...(await candleMinutes())].sort(), [0, 1, 2, 3]);
      assert.ok(!run.stderr().includes(PASSWORD), 'no password printed');
    } finally {
      run.child.kill('SIGKILL');
      await setPassword(PASSWORD);
    }
  });

  it('the password changed on the broker while a service runs (a rotated Secret) ends it after the grace: CC_ERR_BUS_AUTH, exit 2', async () => {
    const graceMs = 10_000;
    const run = runCli(['service', 'candles', '--bus', saslUrl], {
      ...secureEnv(),
      CRYPTOCAST_TOPIC_PREFIX: prefix,
      CRYPTOCAST_LOG_LEVEL: 'info',
      CRYPTOCAST_KAFKA_REFUSED_FOR_MS: String(graceMs),
    });
    const rotated = `Rotated${PASSWORD}`;
    try {
      // The log (JSON lines on stderr) says it runs: subscribed, its connections authenticated.
      await waitFor(
        'the candle service to run',
        () => run.stderr().includes('"msg":"running"') || run.child.exitCode !== null,
        (ok) => ok,
        { timeoutMs: 90_000 },
      );
      await setPassword(rotated);
      // Its connections log in again within KAFKA_SASL_REAUTH_MS (5 s); refusals past the grace end it.
      const code = await exitedWithin(
        run,
        120_000,
        'the running candle service to end on the rotated password',
      );
      const stderr = run.stderr();
      assert.equal(code, 2, stderr);
      assert.match(
        stderr,
        new RegExp(
          `^cryptocast: Kafka authentication failed for user "${USER}" with mechanism SCRAM-SHA-512 at localhost:\\d+.*\\[CC_ERR_BUS_AUTH\\]$`,
          'm',
        ),
      );
      assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
      for (const p of [PASSWORD, rotated]) assert.ok(!stderr.includes(p), 'no password printed');
      // Said at the first refusal, and for good only once the grace had passed (the service's own clock).
      const [first] = logLines(stderr, 'Kafka refused this client: retrying');
      const [forGood] = logLines(stderr, 'Kafka refused this client for good');
      assert.ok(first !== undefined && forGood !== undefined, stderr);
      assert.equal(forGood.code, 'CC_ERR_BUS_AUTH');
      assert.ok(
        forGood.time - first.time >= graceMs,
        `ended ${forGood.time - first.time} ms after the first refusal, within the grace of ${graceMs} ms`,
      );
    } finally {
      run.child.kill('SIGKILL');
      await setPassword(PASSWORD);
    }
  });
});
