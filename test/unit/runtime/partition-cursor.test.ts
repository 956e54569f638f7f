import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { logChunkFailure, PartitionCursor } from '../../../src/runtime/partition-cursor.ts';

const BACKOFF = { initialMs: 100, maxMs: 1_000 };

/** A fake group coordinator: records the commits it accepts, refuses while `down`. */
class FakeCoordinator {
  down = false;
  readonly commits: { offset: bigint; leaderEpoch: number }[] = [];
  commit = async (offset: bigint, leaderEpoch: number) => {
    if (this.down) throw new Error('broker away');
    this.commits.push({ offset, leaderEpoch });
  };
}

describe('the commit protocol of one partition (PartitionCursor)', () => {
  it('commits the offset after a handled chunk, and resumes from there after a later handler failure', async () => {
    const c = new PartitionCursor(0n, -1n);
    const group = new FakeCoordinator();
    assert.equal(c.handled(100n, undefined, 3), true);
    assert.equal(await c.commitPending(true, group.commit), 'committed');
    assert.deepEqual(group.commits, [{ offset: 100n, leaderEpoch: 3 }]);
    assert.deepEqual([c.position, c.committed, c.resumeFrom, c.uncommitted], [100n, 100n, 100n, undefined]);
    // The next chunk (100..199) fails: back to 100, held for the back-off.
    c.position = 200n;
    const delay = c.handlerFailed(1_000, BACKOFF, 100n);
    assert.equal(c.position, 100n);
    assert.equal(c.fetchable(1_000 + delay - 1), false);
    assert.equal(c.fetchable(1_000 + delay), true);
  });

  it('never commits past the handler’s safe offset (an open window), and never backwards', async () => {
    const c = new PartitionCursor(0n, -1n);
    const group = new FakeCoordinator();
    c.handled(100n, 40n, 0);
    await c.commitPending(true, group.commit);
    assert.equal(c.committed, 40n);
    assert.equal(c.position, 100n, 'delivery goes on past the safe offset');
    // A later chunk whose safe offset is still 40: nothing new to commit.
    assert.equal(c.handled(200n, 40n, 0), false);
    assert.equal(await c.commitPending(true, group.commit), 'none');
    assert.deepEqual(
      group.commits.map((x) => x.offset),
      [40n],
    );
    // A failure now re-reads from the commit (40), not from 100 or 200.
    c.handlerFailed(0, BACKOFF, 200n);
    assert.equal(c.position, 40n);
  });

  it('a commit that fails stays pending and goes out on the next try; the back-off grows and is capped', async () => {
    const c = new PartitionCursor(0n, -1n);
    const group = new FakeCoordinator();
    group.down = true;
    c.handled(50n, undefined, 1);
    assert.equal(await c.commitPending(true, group.commit), 'failed');
    assert.deepEqual(c.uncommitted, { offset: 50n, leaderEpoch: 1 });
    assert.equal(c.resumeFrom, 0n, 'not committed: a failure would re-read from the start');
    group.down = false;
    assert.equal(await c.commitPending(true, group.commit), 'committed');
    assert.equal(c.resumeFrom, 50n);
    const delays = [1, 2, 3, 4, 5, 6].map(() => c.handlerFailed(0, BACKOFF, 50n));
    assert.ok(
      delays.every((d, i) => i === 0 || d >= delays[i - 1]!),
      `${delays}`,
    );
    assert.ok(
      delays.every((d) => d <= BACKOFF.maxMs),
      `${delays}`,
    );
    c.handled(60n, undefined, 1);
    assert.equal(c.failures, 0, 'a success resets the back-off');
  });

  it('a partition the group moved away drops its pending commit (its new owner resumes from the previous one)', async () => {
    const c = new PartitionCursor(10n, 10n);
    const group = new FakeCoordinator();
    c.handled(90n, undefined, 0);
    assert.equal(await c.commitPending(false, group.commit), 'dropped');
    assert.deepEqual(group.commits, []);
    assert.equal(c.uncommitted, undefined);
    assert.equal(c.committed, 10n);
  });

  it('a newer target set while a commit is in flight stays pending', async () => {
    const c = new PartitionCursor(0n, -1n);
    c.handled(10n, undefined, 0);
    let release!: () => void;
    const inFlight = c.commitPending(true, () => new Promise<void>((r) => (release = r)));
    c.handled(20n, undefined, 0);
    release();
    assert.equal(await inFlight, 'committed');
    assert.equal(c.committed, 10n);
    assert.deepEqual(c.uncommitted, { offset: 20n, leaderEpoch: 0 });
  });

  it('an out-of-range position is reset, and a failure then re-reads from there', () => {
    const c = new PartitionCursor(5n, -1n);
    c.resetTo(1_000n);
    c.handlerFailed(0, BACKOFF, 1_000n);
    assert.equal(c.position, 1_000n);
  });

  it('successes before where a chunk failed are not progress: the back-off keeps growing over a re-read', () => {
    const c = new PartitionCursor(0n, -1n);
    c.handled(100n, 20n, 0); // a stage that commits behind (an open window from offset 20)
    const first = c.handlerFailed(0, BACKOFF, 100n);
    // The re-read from 20 gets through 20..99 again, then fails at 100 again.
    c.handled(100n, 20n, 0);
    assert.equal(c.failures, 1, 'not reset by the re-read');
    const second = c.handlerFailed(0, BACKOFF, 100n);
    assert.ok(second > first, `${first} then ${second}`);
    c.handled(150n, 20n, 0);
    assert.equal(c.failures, 0, 'reset once past the failed chunk');
  });

  it('a chunk with nothing to hand over commits past refused records, but not past an open window or a quarantined record', async () => {
    const free = new PartitionCursor(0n, -1n);
    assert.equal(
      free.passed(10n, true, 0),
      true,
      'refused records only, handler holding nothing: committed past',
    );
    assert.deepEqual(free.uncommitted, { offset: 10n, leaderEpoch: 0 });
    const holding = new PartitionCursor(0n, -1n);
    holding.handled(100n, 40n, 0);
    await holding.commitPending(true, new FakeCoordinator().commit);
    assert.equal(holding.passed(120n, true, 0), false, 'the window from 40 stays to be re-read');
    assert.equal(holding.committed, 40n);
    assert.equal(holding.position, 120n);
    const quarantined = new PartitionCursor(0n, -1n);
    assert.equal(
      quarantined.passed(11n, false, 0),
      false,
      'moved past a quarantined record, not committed past',
    );
    assert.equal(quarantined.position, 11n);
  });

  it('a commit past a quarantined record lets the poison guard forget it', async () => {
    const c = new PartitionCursor(0n, -1n);
    const bug = new TypeError('x is undefined');
    for (let i = 0; i < 3; i++) c.chunkFailed(0, BACKOFF, bug, 0n, 16, 16n);
    for (let i = 0; i < 3; i++) c.chunkFailed(0, BACKOFF, bug, 10n, 1, 11n);
    assert.equal(c.poison.isQuarantined(10n), true);
    c.handled(10n, undefined, 0);
    await c.commitPending(true, new FakeCoordinator().commit);
    assert.equal(c.poison.remembered, 1, 'committed up to it: still read again after a failure');
    c.handled(16n, undefined, 0);
    await c.commitPending(true, new FakeCoordinator().commit);
    assert.equal(c.poison.isQuarantined(10n), false);
    assert.equal(c.poison.remembered, 0);
  });

  it('remembers a dead-lettered record until a commit passes it (a re-read does not send it again; memory stays bounded)', async () => {
    const c = new PartitionCursor(0n, -1n);
    c.deadLetterSent(3n);
    c.deadLetterSent(12n);
    c.handlerFailed(0, BACKOFF, 0n);
    assert.equal(c.isDeadLettered(3n), true, 'the re-read from 0 meets it again');
    c.handled(10n, undefined, 0);
    await c.commitPending(true, new FakeCoordinator().commit);
    assert.equal(c.isDeadLettered(3n), false, 'committed past: never read again, forgotten');
    assert.equal(c.isDeadLettered(12n), true);
    c.resetTo(0n);
    assert.equal(c.isDeadLettered(12n), false, 'a recreated topic: its offsets are other records');
  });
});

describe('how a failed chunk is logged (logChunkFailure, both transports)', () => {
  /** A logger at `level` whose lines (parsed) are collected. */
  function collecting(level: string) {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level }, { write: (l: string) => lines.push(JSON.parse(l)) });
    return { logger, lines };
  }
  const where = { service: 'feature-writer', topic: 'features', partition: 0, offset: 2001 };
  const full = Object.assign(
    new Error('Failed to commit: Could not write file "s.duckdb.wal": No space left on device'),
    { code: 'ENOSPC' },
  );
  const failure = { delayMs: 100, verdict: undefined, holdStarted: false };

  it('one line per failure with its code and message, no stack (a full disk wrote one stack per stage)', () => {
    const { logger, lines } = collecting('info');
    logChunkFailure(logger, where, full, failure);
    assert.equal(lines.length, 1);
    assert.deepEqual(
      { ...lines[0], time: undefined, pid: undefined, hostname: undefined },
      {
        level: 50,
        ...where,
        code: 'ENOSPC',
        reason: full.message,
        msg: 'handler failed; re-reading from the last commit',
        time: undefined,
        pid: undefined,
        hostname: undefined,
      },
    );
    assert.doesNotMatch(JSON.stringify(lines), /stack|\s{4}at /);
  });

  it('a programming error (a TypeError) keeps its stack on the line: a bug report needs it', () => {
    const { logger, lines } = collecting('info');
    logChunkFailure(
      logger,
      where,
      new TypeError("Cannot read properties of undefined (reading 'close')"),
      failure,
    );
    assert.equal(lines.length, 1);
    assert.match(String((lines[0]!.err as { stack?: unknown } | undefined)?.stack), /TypeError: .*\n\s+at /);
  });

  it('the stack at debug level', () => {
    const { logger, lines } = collecting('debug');
    logChunkFailure(logger, where, new Error('boom'), failure);
    assert.equal(lines.filter((l) => l.level === 50).length, 1);
    const debug = lines.find((l) => l.level === 20);
    assert.match(String((debug?.err as { stack?: unknown } | undefined)?.stack), /boom\n\s+at /);
  });
});
