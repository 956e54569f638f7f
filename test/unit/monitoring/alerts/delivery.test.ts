import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { metrics } from '../../../../src/core/metrics.ts';
import { AlertDelivery } from '../../../../src/monitoring/alerts/delivery.ts';
import { channelsFromEnv, discordBody, slackBody } from '../../../../src/monitoring/alerts/notifiers.ts';
import type { Notification } from '../../../../src/monitoring/alerts/state.ts';

const n = (o: Partial<Notification> = {}): Notification => ({
  status: 'firing',
  rule: 'model-worse-than-persistence',
  kind: 'skill_below',
  severity: 'critical',
  key: 'BTC/USD',
  value: -0.012,
  message:
    'BTC/USD: skill over 24h is -1.20 % (threshold 0.00 %, 300 predictions): the model is worse than persistence',
  startsAt: Date.UTC(2026, 0, 5, 12),
  at: Date.UTC(2026, 0, 5, 12, 15),
  repeat: 0,
  ...o,
});

/** A local receiver whose answer to each request the test scripts; it records every body it got. */
class Receiver {
  server!: Server;
  url = '';
  got: { path: string; body: unknown; auth?: string }[] = [];
  script: ((req: IncomingMessage, res: ServerResponse) => void)[] = [];
  async start() {
    this.server = createServer((req, res) => {
      let text = '';
      req.on('data', (d) => {
        text += d;
      });
      req.on('end', () => {
        this.got.push({ path: req.url ?? '', body: JSON.parse(text), auth: req.headers.authorization });
        const next = this.script.shift();
        if (next) next(req, res);
        else res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  stop() {
    this.server.closeAllConnections();
    return new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** The value of cryptocast_alert_notifications_total{channel, result}. */
const sent = async (channel: string, result: string) =>
  (await metrics.alertNotifications.get()).values.find(
    (v) => v.labels.channel === channel && v.labels.result === result,
  )?.value ?? 0;

describe('alert notifications to webhooks (a local receiver)', () => {
  const rx = new Receiver();
  before(() => rx.start());
  after(() => rx.stop());

  it('Slack and Discord payloads in their documented shapes; the generic webhook with its bearer token', async () => {
    rx.got = [];
    const channels = channelsFromEnv({
      CRYPTOCAST_SLACK_WEBHOOK_URL: `${rx.url}/slack`,
      CRYPTOCAST_DISCORD_WEBHOOK_URL: `${rx.url}/discord`,
      CRYPTOCAST_ALERT_WEBHOOK_URL: `${rx.url}/hook`,
      CRYPTOCAST_ALERT_WEBHOOK_TOKEN: 'hook-token-123',
    });
    const d = new AlertDelivery(channels);
    d.send(n());
    d.send(n({ status: 'resolved' }));
    await d.idle();
    const by = (p: string) =>
      rx.got.filter((g) => g.path === p).map((g) => g.body as Record<string, unknown>);
    const [slackFiring, slackResolved] = by('/slack');
    assert.equal(slackFiring!.text, slackBody(n()).text);
    assert.match(
      String(slackFiring!.text),
      /^FIRING: model-worse-than-persistence \(BTC\/USD\) — BTC\/USD: skill/,
    );
    const blocks = slackFiring!.blocks as { type: string }[];
    assert.deepEqual(
      blocks.map((b) => b.type),
      ['header', 'section', 'context'],
    );
    assert.match(String(slackResolved!.text), /^RESOLVED/);
    const [discord] = by('/discord');
    const embed = (discord!.embeds as Record<string, unknown>[])[0]!;
    assert.equal(discord!.username, 'cryptocast');
    assert.ok(String(discord!.content).length <= 2000);
    assert.equal(embed.color, 0xd32f2f, 'critical firing is red');
    assert.equal(embed.timestamp, '2026-01-05T12:15:00.000Z');
    assert.deepEqual(discord, discordBody(n()));
    const hook = rx.got.find((g) => g.path === '/hook')!;
    assert.equal(hook.auth, 'Bearer hook-token-123');
    assert.deepEqual(Object.keys(hook.body as object).slice(0, 3), ['version', 'source', 'status']);
  });

  it('429 with Retry-After (Slack: header; Discord: retry_after in the body) is honoured, then sent', async () => {
    rx.got = [];
    const waits: number[] = [];
    const sleep = async (ms: number) => {
      waits.push(ms);
    };
    rx.script = [
      (_q, res) => res.writeHead(429, { 'retry-after': '7' }).end('rate limited'),
      (_q, res) =>
        res
          .writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' })
          .end(JSON.stringify({ message: 'You are being rate limited.', retry_after: 0.25, global: false })),
    ];
    const before = await sent('slack', 'sent');
    const d = new AlertDelivery(
      [{ ...channelsFromEnv({ CRYPTOCAST_SLACK_WEBHOOK_URL: `${rx.url}/s` })[0]! }],
      { sleep },
    );
    d.send(n());
    await d.idle();
    assert.deepEqual(waits, [7_000, 250]);
    assert.equal(rx.got.length, 3);
    assert.equal(await sent('slack', 'sent'), before + 1);
  });

  it('500s are retried with back-off; a 4xx is final; both counted', async () => {
    rx.got = [];
    const waits: number[] = [];
    rx.script = [
      (_q, res) => res.writeHead(500).end(),
      (_q, res) => res.writeHead(503).end(),
      (_q, res) => res.writeHead(404).end('no such hook'),
    ];
    const failedBefore = await sent('webhook', 'failed');
    const d = new AlertDelivery(channelsFromEnv({ CRYPTOCAST_ALERT_WEBHOOK_URL: `${rx.url}/h` }), {
      backoff: { initialMs: 100, maxMs: 1_000 },
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    d.send(n());
    await d.idle();
    assert.equal(rx.got.length, 3);
    assert.equal(waits.length, 2);
    assert.ok(waits[0]! >= 50 && waits[0]! <= 100 && waits[1]! >= 100 && waits[1]! <= 200, `${waits}`);
    assert.equal(d.stats.failed, 1);
    assert.equal(await sent('webhook', 'failed'), failedBefore + 1);
  });

  it('a receiver that never answers: send() returns at once, the attempt times out, is retried and counted', async () => {
    rx.got = [];
    const hung: ServerResponse[] = [];
    rx.script = [(_q, res) => hung.push(res), (_q, res) => hung.push(res)];
    const d = new AlertDelivery(channelsFromEnv({ CRYPTOCAST_DISCORD_WEBHOOK_URL: `${rx.url}/d` }), {
      timeoutMs: 200,
      maxAttempts: 2,
      backoff: { initialMs: 10, maxMs: 10 },
    });
    // send() is synchronous and returns nothing to await: the caller cannot be held up by the receiver (measured
    // in what it returns, not in milliseconds, which a loaded machine stretches).
    const returned: unknown = d.send(n());
    assert.equal(returned, undefined, 'send never waits for the receiver');
    // The caller (the monitor's scoring) keeps running meanwhile: a timer fires while the receiver hangs.
    let ticks = 0;
    const timer = setInterval(() => ticks++, 20);
    await d.idle();
    clearInterval(timer);
    assert.ok(ticks >= 5, `the event loop was free (${ticks} ticks)`);
    assert.deepEqual([d.stats.retried, d.stats.failed], [1, 1]);
    for (const r of hung) r.destroy();
  });
});
