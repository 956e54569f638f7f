import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CryptocastError, ERR } from '../../../src/core/errors.ts';
import { RssSource } from '../../../src/news/rss.ts';

/**
 * The CLI checks --feeds (src/cli/flags.ts), but RssSource is built elsewhere too (the embedded runtime, a program of
 * one's own): a feed URL that does not parse threw the URL parser's bare TypeError ("Invalid URL"), naming neither the
 * feed nor the setting.
 */
describe('RssSource: a bad feed URL', () => {
  const refusal = (url: string) => (e: unknown) =>
    e instanceof CryptocastError &&
    e.code === ERR.CONFIG.code &&
    e.message.includes(`"${url}"`) &&
    /feed URL/.test(e.message);

  it('that does not parse is CC_ERR_CONFIG naming it', () => {
    assert.throws(
      () =>
        new RssSource({
          feeds: [{ url: 'https://ok.example/rss' }, { url: 'coindesk.com/rss' }],
          userAgent: 'ua',
        }),
      refusal('coindesk.com/rss'),
    );
  });

  it('that is not http(s) is CC_ERR_CONFIG naming it (it would fail at every poll)', () => {
    assert.throws(
      () => new RssSource({ feeds: [{ url: 'ftp://feeds.example/rss' }], userAgent: 'ua' }),
      refusal('ftp://feeds.example/rss'),
    );
  });

  it('with credentials: named without them', () => {
    assert.throws(
      () => new RssSource({ feeds: [{ url: 'ftp://me:s3cret@feeds.example/rss' }], userAgent: 'ua' }),
      (e: unknown) =>
        e instanceof CryptocastError && e.code === ERR.CONFIG.code && !e.message.includes('s3cret'),
    );
  });

  it('none at all: CC_ERR_CONFIG saying what to give (it was a bare Error, printed with its stack as a bug)', () => {
    assert.throws(
      () => new RssSource({ feeds: [], userAgent: 'ua' }),
      (e: unknown) =>
        e instanceof CryptocastError &&
        e.code === ERR.CONFIG.code &&
        /no feed/.test(e.message) &&
        /--feeds|CRYPTOCAST_NEWS_FEEDS/.test(`${e.message} ${e.hint ?? ''}`),
    );
  });
});
