import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NewsSink } from '../../src/news/source.ts';
import type { DeadLetter } from '../../src/schemas/dlq.ts';
import type { NewsItem } from '../../src/schemas/news.ts';

/** What a news source handed over: its items and its dead letters. */
export class NewsLogSink implements NewsSink {
  items: NewsItem[] = [];
  dead: DeadLetter[] = [];
  news(xs: readonly NewsItem[]) {
    this.items.push(...xs);
  }
  reject(d: DeadLetter) {
    this.dead.push(d);
  }
}

/** A local HTTP server answering with `handler` (a feed, an API); close `s` when done. */
export async function serveHttp(handler: RequestListener): Promise<{ s: Server; base: string }> {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { s, base: `http://127.0.0.1:${(s.address() as AddressInfo).port}` };
}
