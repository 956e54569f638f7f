import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CandlesFeed } from '../../../src/api/candles-feed.ts';
import { ErrorsFeed } from '../../../src/api/errors-feed.ts';
import { LatestPredictions } from '../../../src/api/latest.ts';
import { WS_CLIENT_FRAMES, WS_CONTROL_FRAMES } from '../../../src/api/ws.ts';
import type { CandlesTable } from '../../../src/candles/store/candles-table.ts';
import type { ErrorsStore } from '../../../src/monitoring/store/errors-store.ts';

/** The WebSocket's message catalogue (docs/api.md) lists exactly the frames the server takes and sends. */
const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs', 'api.md'), 'utf8');

/** The frame names in the first column of the table under `heading` (up to the next heading). */
function documented(heading: string): string[] {
  const start = doc.indexOf(`### ${heading}\n`);
  assert.ok(start >= 0, `docs/api.md has a section "${heading}"`);
  const rest = doc.slice(start + heading.length + 5);
  const section = rest.slice(0, rest.search(/^#/m) === -1 ? undefined : rest.search(/^#/m));
  return [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]!).sort();
}

test('docs/api.md: the client frames are the ones the server takes', () => {
  assert.deepEqual(documented('Client → server'), [...WS_CLIENT_FRAMES].sort());
});

test("docs/api.md: the server frames are the server's control frames and each channel's record frame", () => {
  // Every channel the API can serve (errors and candles with their stores); the stores are not read here.
  const feeds = [
    new LatestPredictions(),
    new ErrorsFeed({} as ErrorsStore),
    new CandlesFeed({} as CandlesTable),
  ];
  assert.deepEqual(
    documented('Server → client'),
    [...WS_CONTROL_FRAMES, ...feeds.map((f) => f.spec.frameType)].sort(),
  );
});
