import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { humanLogLine } from '../../../src/app/progress.ts';
import { log, redirectLogLines } from '../../../src/core/log.ts';

describe('log lines for a person at a terminal (run above its status line)', () => {
  it('says level, who, what and why in one line', () => {
    assert.equal(
      humanLogLine(
        '{"level":40,"time":1,"app":"cryptocast","component":"kraken-ws","err":{"type":"Error","message":"getaddrinfo ENOTFOUND ws.kraken.com","stack":"Error: …"},"msg":"connection lost; reconnecting"}\n',
      ),
      'warning: kraken-ws: connection lost; reconnecting (getaddrinfo ENOTFOUND ws.kraken.com)',
    );
    assert.equal(
      humanLogLine('{"level":50,"source":"news","reason":"feed answered 503","msg":"feed failed"}'),
      'error: news: feed failed (feed answered 503)',
    );
    assert.equal(humanLogLine('{"level":30,"msg":"ready"}'), 'info: ready');
    assert.equal(humanLogLine('not json\n'), 'not json');
  });

  it('redirects every log line, redacted, and back to stderr when undone', () => {
    const lines: string[] = [];
    redirectLogLines((l) => lines.push(l));
    try {
      log.warn({ source: 't', url: 'postgres://u:hunter2@db:5432/x' }, 'store away');
    } finally {
      redirectLogLines(undefined);
    }
    assert.equal(lines.length, 1);
    assert.doesNotMatch(lines[0]!, /hunter2/);
    assert.match(humanLogLine(lines[0]!), /^warning: t: store away$/);
  });
});
