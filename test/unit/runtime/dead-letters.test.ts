import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  groupDeadLetters,
  reviveDeadLetter,
  selectDeadLetters,
  withoutCopies,
} from '../../../src/runtime/dead-letters.ts';
import type { Topic } from '../../../src/runtime/topic.ts';
import { encodeTradeEvent } from '../../../src/runtime/trade-codec.ts';
import { DLQ_MAX_KEY_CHARS, DLQ_MAX_PAYLOAD_CHARS, deadLetter } from '../../../src/schemas/dlq.ts';
import { topics } from '../../../src/schemas/topics.ts';
import { T0, trade } from '../../support/factories.ts';

const declared = Object.values(topics) as Topic<unknown>[];
const letter = (o: Partial<Parameters<typeof deadLetter>[0]> & { payload: unknown }) =>
  deadLetter({ service: 'candles', origin: 'trades', kind: 'late', reason: 'late by 9 s', now: T0, ...o });

describe('dead letters: select, group, revive', () => {
  it('selects by service, origin, kind and time', () => {
    const all = [
      letter({ payload: 1 }),
      letter({ payload: 2, kind: 'invalid', now: T0 + 10 }),
      letter({ payload: 3, service: 'trades', origin: 'kraken-ws', kind: 'parse', now: T0 + 20 }),
    ];
    assert.equal(selectDeadLetters(all, {}).length, 3);
    assert.deepEqual(
      selectDeadLetters(all, { service: 'candles' }).map((d) => d.payload),
      ['1', '2'],
    );
    assert.deepEqual(
      selectDeadLetters(all, { kind: 'invalid' }).map((d) => d.payload),
      ['2'],
    );
    assert.deepEqual(
      selectDeadLetters(all, { origin: 'kraken-ws' }).map((d) => d.payload),
      ['3'],
    );
    assert.deepEqual(
      selectDeadLetters(all, { since: T0 + 10 }).map((d) => d.payload),
      ['2', '3'],
    );
  });

  it('groups by service, origin and kind, largest first, with the span and the latest reason', () => {
    const groups = groupDeadLetters([
      letter({ payload: 1, reason: 'a', now: T0 + 5 }),
      letter({ payload: 2, service: 'trades', origin: 'kraken-ws', kind: 'parse', reason: 'x' }),
      letter({ payload: 3, reason: 'b', now: T0 + 9 }),
      letter({ payload: 4, reason: 'a', now: T0 + 1 }),
    ]);
    assert.deepEqual(groups, [
      {
        service: 'candles',
        origin: 'trades',
        kind: 'late',
        count: 3,
        first: T0 + 1,
        last: T0 + 9,
        latestReason: 'b',
        reasons: 2,
      },
      {
        service: 'trades',
        origin: 'kraken-ws',
        kind: 'parse',
        count: 1,
        first: T0,
        last: T0,
        latestReason: 'x',
        reasons: 1,
      },
    ]);
  });

  it('revives a JSON payload its topic accepts, and a binary one through the codec', () => {
    const t = trade({ ts: T0, price: 60_000 });
    const json = reviveDeadLetter(letter({ payload: t }), topics.trades, declared);
    assert.deepEqual(json, { ok: true, value: t });
    const bin = reviveDeadLetter(
      letter({ kind: 'invalid', payload: `base64:${encodeTradeEvent(t).toString('base64')}` }),
      topics.trades,
      declared,
    );
    assert.deepEqual(bin, { ok: true, value: t });
  });

  it('a source’s reject (its origin is a connector, not a topic) goes to the topic its payload passes', () => {
    const t = trade({ ts: T0, price: 60_000 });
    const rejected = letter({ service: 'trades', origin: 'kraken-ws', kind: 'implausible', payload: t });
    assert.deepEqual(reviveDeadLetter(rejected, topics.trades, declared), { ok: true, value: t });
    const r = reviveDeadLetter(rejected, topics.candles, declared);
    assert.equal(r.ok, false, 'a trade is not a candle');
  });

  it('says why a letter cannot go back', () => {
    const why = (o: Parameters<typeof letter>[0], to = topics.trades as Topic<unknown>) => {
      const r = reviveDeadLetter(letter(o), to, declared);
      assert.equal(r.ok, false);
      return r.ok ? '' : r.reason;
    };
    assert.match(why({ origin: 'candles', payload: '{}' }), /came from the topic candles, not trades/);
    assert.match(why({ origin: 'kraken-ws', payload: '["trade",{"x":1}]' }), /./);
    assert.match(why({ payload: 'not json at all' }), /^not JSON/);
    assert.match(why({ payload: { ...trade({ ts: T0, price: 60_000 }), price: -1 } }), /price/);
    assert.match(why({ payload: 'x'.repeat(DLQ_MAX_PAYLOAD_CHARS + 1) }), /payload was cut/);
    assert.match(why({ payload: 'base64:zAEACQ==' }), /./); // a truncated binary trade: the codec's reason
    assert.match(
      why(
        { origin: 'candles', payload: `base64:${Buffer.from([0xcc, 1]).toString('base64')}` },
        topics.candles as Topic<unknown>,
      ),
      /no binary encoding/,
    );
  });

  it('keeps one of the copies a consumer writes of one record (one per re-read)', () => {
    const a = letter({ payload: 1, partition: 0, offset: 5n });
    const { letters, copies } = withoutCopies([
      a,
      { ...a, ts: T0 + 100 },
      letter({ payload: 1, partition: 0, offset: 6n }),
      letter({ service: 'trades', origin: 'kraken-ws', payload: 'x' }),
      letter({ service: 'trades', origin: 'kraken-ws', payload: 'x' }),
      letter({ service: 'trades', origin: 'kraken-ws', payload: 'y' }),
    ]);
    assert.equal(copies, 2);
    assert.deepEqual(
      letters.map((d) => [d.origin, d.offset ?? d.payload]),
      [
        ['trades', '5'],
        ['trades', '6'],
        ['kraken-ws', 'x'],
        ['kraken-ws', 'y'],
      ],
    );
  });
});

describe('a dead letter fits in any Kafka record', () => {
  // A garbled record — 200 KB of control bytes as its key, a payload and a reason as bad — made a dead letter of over
  // 1 MiB (each byte `\u0001` in JSON), which the broker refuses for good: its partition retried it for ever.
  it('the worst key, payload and reason: under half of the broker’s 1 MiB default', () => {
    const worst = '\u0001'.repeat(200_000);
    const dl = deadLetter({
      service: 'test',
      origin: 'trades',
      kind: 'invalid',
      reason: worst,
      payload: worst.repeat(5),
      key: worst,
      partition: 0,
      offset: 1n,
    });
    assert.equal(dl.key!.length, DLQ_MAX_KEY_CHARS);
    assert.equal(dl.payload.length, DLQ_MAX_PAYLOAD_CHARS);
    assert.ok(
      Buffer.byteLength(JSON.stringify(dl)) < 512 * 1024,
      `${Buffer.byteLength(JSON.stringify(dl))} bytes`,
    );
  });
});
