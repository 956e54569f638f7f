/**
 * A consumer-group member in its own process whose event loop stalls in the middle of a batch (a long GC pause, a
 * machine too busy, a synchronous hold): for test/integration/kafka-stale-commit.test.ts. It consumes `single` (one
 * partition, records `{ v: 1, pair, n }`) in group `group` with `maxBatch` 10 and the given session timeout; at the
 * chunk that starts at offset `STALL_AT` it blocks, synchronously (no heartbeat, no I/O), until the file `RELEASE`
 * exists. Lines on stdout: `handled <first> <last>` per chunk, `stalled` when it blocks, `released`, `assigned <ps>` and
 * `revoked <ps>`; `stopped` after SIGTERM.
 *
 * argv: broker URL, topic prefix, session timeout (ms), STALL_AT, RELEASE.
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { KafkaBus } from '../../src/runtime/kafka/bus.ts';
import { defineTopic } from '../../src/runtime/topic.ts';

const [url, prefix, session, stallAt, release] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];
const Msg = z.object({ v: z.literal(1), pair: z.string().min(1), n: z.number().int() });
const single = defineTopic<z.infer<typeof Msg>>({
  name: 'single',
  description: 'test numbers',
  schema: Msg,
  key: (m) => m.pair,
  partitions: 1,
});
const say = (line: string) => process.stdout.write(`${line}\n`);
const bus = KafkaBus.connect(url, { topicPrefix: prefix, maxBatch: 10, sessionTimeoutMs: Number(session) });
let stalled = false;
const sub = await bus.subscribe({
  topic: single,
  group: 'g',
  service: 'stalling',
  onAssign: (ps) => {
    say(`assigned ${ps.join(',')}`);
  },
  onRevoke: (ps) => {
    say(`revoked ${ps.join(',')}`);
  },
  handle: (batch) => {
    const first = batch.records[0]!.offset;
    if (!stalled && first === BigInt(stallAt)) {
      stalled = true;
      say('stalled');
      const deadline = Date.now() + 120_000;
      while (!existsSync(release) && Date.now() < deadline) {
        // Blocks the event loop on purpose: nothing else of this process runs meanwhile.
      }
      say('released');
    }
    say(`handled ${first} ${batch.records.at(-1)!.offset}`);
    return undefined;
  },
});
process.on('SIGTERM', async () => {
  await sub.stop();
  await bus.close();
  say('stopped');
  process.exit(0);
});
