import { Consumer, findErrorBy, heartbeatV4, offsetCommitV8 } from '@platformatic/kafka';
import { reportDependency } from '../../core/dependency.ts';
import type { Logger } from '../../core/log.ts';
import { backoffCap } from '../../core/retry.ts';
import { type DeadLetter, deadLetter } from '../../schemas/dlq.ts';
import { topics as knownTopics } from '../../schemas/topics.ts';
import { type CommitPlan, type Delivered, PartitionLost, type SubscribeOptions } from '../bus.ts';
import { countDeadLetters } from '../metered-bus.ts';
import { logChunkFailure, PartitionCursor } from '../partition-cursor.ts';
import type { Topic } from '../topic.ts';
import type { KafkaBus } from './bus.ts';
import {
  FETCH_BACKOFF,
  FETCH_MAX_WAIT_MS,
  GIVE_BACK_MARGIN_MS,
  HANDLER_BACKOFF,
  ISOLATION,
  type RawConsumer,
} from './limits.ts';
import { type Fetched, fetchRecords, parseRecord, type RawRecord } from './records.ts';

/**
 * One member of a consumer group. Two clients: `member` joins the group, heartbeats, reads and commits
 * offsets; `fetcher` only fetches, on its own connections, so that a long-polling fetch never delays a
 * heartbeat or a commit (a broker handles one request per connection at a time).
 *
 * Assignment changes arrive as events from the client's background (re)join; they are applied by the fetch
 * loop between batches, so `onRevoke`/`onAssign` never run concurrently with `handle`.
 *
 * A rebalance never lets two members handle one batch at once: the client asks `protocolsMetadata` (a documented
 * consumer option, awaited before every JoinGroup it sends) for this member's subscription data, and the answer
 * waits until the batch in hand is handled and committed (`quiesce`), heartbeating meanwhile. The broker completes
 * a rebalance only once every member has rejoined (or the rebalance timeout passed), so no partition is handed to a
 * new member before its previous owner is done with it and has committed (docs/architecture.md#rebalances). A batch
 * that would hold the rejoin past the rebalance timeout (the member would be removed, and its partitions handed over
 * while it still handles the batch) is given back instead: its `Batch.signal` aborts shortly before, and nothing of it
 * is committed.
 */
export class KafkaSubscription<T> {
  private readonly bus: KafkaBus;
  private readonly opts: SubscribeOptions<T>;
  private readonly topicName: string;
  private readonly log: Logger;
  /** This subscription's loop as a path of the bus's refusals (`KafkaBus.refused`): its member and its fetcher. */
  private readonly refusalPath: string;
  private readonly member: RawConsumer;
  private readonly heartbeatIntervalMs: number;
  /** How long the group waits for this member to rejoin in a rebalance (see the consumer's `rebalanceTimeout`). */
  private readonly rebalanceTimeoutMs: number;
  /** The chunk in the handler's hands: aborted when its partition is lost to this member (`Batch.signal`). */
  private batchInHand: AbortController | undefined;
  private readonly fetcher: RawConsumer;
  private readonly partitions = new Map<number, PartitionCursor>();
  /** The latest assignment from the group, not applied yet, and its generation. */
  private pending: Set<number> | undefined;
  private pendingGeneration = -1;
  /**
   * The generation of the assignment applied last: the one every commit is sent in (`sendCommit`), so that the broker
   * refuses it once the group has moved on, until the next assignment is applied and says whether the partition is
   * still this member's.
   */
  private generation = -1;
  /**
   * A commit was refused for the group's sake (this member evicted, a newer generation, a rebalance under way): the
   * partitions may be another member's already, so nothing more is handed over until the next assignment is applied
   * (the client's heartbeat hears the same answer and rejoins).
   */
  private outOfGeneration = false;
  private joined = false;
  private rejoinNeeded = false;
  /** The client is rejoining the group: no batch is handed over until the new assignment arrives (`quiesce`). */
  private rejoining = false;
  /** `quiesce` while it runs. */
  private quiescing: Promise<void> | undefined;
  /** The fetch loop's delivery of one fetch, while it runs (`quiesce` waits for it). */
  private delivering: Promise<void> | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  /** Wakes the fetch loop (assignment, stop). */
  private readonly wake = new Signal();
  /** Wakes `caughtUp` waiters (positions moved, assignment applied). */
  private readonly progress = new Signal();

  constructor(bus: KafkaBus, opts: SubscribeOptions<T>) {
    this.bus = bus;
    this.opts = opts;
    this.topicName = bus.name(opts.topic as Topic<unknown>);
    this.log = bus.log.child({ service: opts.service, topic: opts.topic.name, group: opts.group });
    this.refusalPath = `subscription ${opts.group}/${opts.topic.name}`;
    const sessionTimeout = bus.sessionTimeoutMs;
    this.heartbeatIntervalMs = Math.min(1_000, Math.floor(sessionTimeout / 3));
    // How long the broker waits for every member to rejoin in a rebalance: the longest a member's batch in hand may
    // hold one (`quiesce`); a member not rejoined by then is removed from the group.
    this.rebalanceTimeoutMs = Math.max(sessionTimeout, 30_000);
    this.member = new Consumer({
      // TLS and SASL as every client of the bus (a managed Kafka: src/config/kafka-security.ts).
      ...bus.connectionOptions(),
      clientId: `${bus.clientId}-${opts.service}`,
      groupId: bus.prefix + opts.group,
      bootstrapBrokers: bus.brokers,
      autocommit: false,
      sessionTimeout,
      heartbeatInterval: this.heartbeatIntervalMs,
      rebalanceTimeout: this.rebalanceTimeoutMs,
      isolationLevel: ISOLATION,
      retries: 5,
      retryDelay: 250,
      // Awaited before each JoinGroup the client sends, the first and every rejoin (its heartbeat rejoins as soon
      // as the coordinator announces a rebalance). The same empty subscription data as without the option.
      protocolsMetadata: async () => {
        // A join the client asks for while `quiesce` runs (a nested join) goes on at once: waiting for `quiesce` would
        // wait for itself. (The client's own `commit` rejoined so, from inside a commit; commits no longer use it:
        // `sendCommit`.)
        if (this.quiescing === undefined) {
          this.quiescing = this.quiesce();
          try {
            await this.quiescing;
          } finally {
            this.quiescing = undefined;
          }
        }
        return Buffer.alloc(0);
      },
    });
    this.fetcher = bus.newRawClient(`${opts.service}-fetch`);
    // The client emits 'error' when a background rejoin fails for good (broker away too long); it then stops
    // heartbeating, so the loop rejoins. (An 'error' event without a listener would crash the process.)
    this.member.on('error', (err) => {
      // A refusal is said by `KafkaBus.refused`; the loop rejoins all the same (refused again, the grace counts on).
      if (!this.handedRefusal(err)) this.log.warn({ err }, 'consumer group membership lost; rejoining');
      this.giveBack('consumer group membership lost');
      this.rejoinNeeded = true;
      this.wake.notify();
    });
    this.member.on('consumer:group:join', (payload) => {
      const mine = new Set<number>();
      for (const a of payload.assignments ?? [])
        if (a.topic === this.topicName) for (const p of a.partitions) mine.add(p);
      this.pending = mine;
      this.pendingGeneration = payload.generationId ?? -1;
      // A nested join's assignment (see `protocolsMetadata`) is followed by the outer join's.
      if (this.quiescing === undefined) this.rejoining = false;
      this.wake.notify();
    });
    this.member.topics.trackAll(this.topicName);
    this.fetcher.topics.trackAll(this.topicName);
  }

  /** Joins the group and applies the first assignment (start positions, `onAssign`) before resolving. */
  async start(): Promise<void> {
    await this.member.joinGroup({});
    const deadline = Date.now() + 60_000;
    while (this.pending !== undefined && !this.stopped) {
      if (await this.applyAssignment()) break;
      if (Date.now() > deadline)
        throw new Error(`${this.opts.service}: could not start consuming ${this.topicName}`);
      await sleep(250);
    }
    this.joined = true;
    this.loop = this.run();
  }

  /** The first stop's work: a second `stop()` (an abort listener's, then the main path's) waits for it too. */
  private stopping: Promise<void> | undefined;

  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  /**
   * Before the client (re)joins the group: stops handing batches over until the new assignment arrives, waits for
   * the batch in hand, and commits what was handled while the partitions are still this member's (the rebalance
   * does not complete before this member's JoinGroup, up to the rebalance timeout, so nobody else reads them
   * meanwhile; the member's session is kept by `heartbeatWhileQuiescing`). A commit that fails is
   * logged by `commit` and left: the partition's next owner reads again from the previous commit (at-least-once).
   *
   * A batch still in hand shortly before the rebalance timeout is given back (`Batch.signal`): past the timeout the
   * broker would remove this member and hand its partitions to the others while its handler still works on the
   * batch, which would then be handled (and its output published) twice. The margin covers the time the client took
   * to hear of the rebalance (a heartbeat interval) and the rejoin after the handler let go.
   */
  private async quiesce(): Promise<void> {
    this.rejoining = true;
    this.wake.notify();
    const stopHeartbeats = this.heartbeatWhileQuiescing();
    const giveBackAt = setTimeout(
      () =>
        this.giveBack(
          `the batch held the rejoin for ${this.rebalanceTimeoutMs - GIVE_BACK_MARGIN_MS} ms, near the rebalance timeout`,
        ),
      this.rebalanceTimeoutMs - GIVE_BACK_MARGIN_MS,
    );
    try {
      // The loop logs what a delivery throws; here it only has to be over.
      while (this.delivering !== undefined) await this.delivering.catch(() => {});
      await this.flushCommits();
    } finally {
      clearTimeout(giveBackAt);
      await stopHeartbeats();
    }
  }

  /** Aborts the signal of the batch in hand, if any: its partition is lost to this member (`Batch.signal`). */
  private giveBack(why: string): void {
    const batch = this.batchInHand;
    if (batch === undefined || batch.signal.aborted) return;
    this.log.warn({ why }, 'partition lost while its batch is in hand: the batch is given back uncommitted');
    batch.abort(new PartitionLost(why));
  }

  /**
   * Heartbeats of this member's current generation until the returned function is called. The client stops its
   * own while it rejoins, and `quiesce` holds its rejoin: without these the broker would evict this member after
   * the session timeout, and hand its partitions over while its batch is still in hand. During a rebalance the
   * broker answers a member's heartbeat REBALANCE_IN_PROGRESS and renews its session; it waits for the member's
   * JoinGroup up to the rebalance timeout (the Kafka protocol's separate session and rebalance timeouts, as the
   * Java client's background heartbeat does until `max.poll.interval.ms`). Sent with the client's public protocol
   * API on its connection to the group coordinator (`connectToBrokers`), with its public group, generation and
   * member id: no internal of the client.
   */
  private heartbeatWhileQuiescing(): () => Promise<void> {
    return heartbeatUntilStopped({
      intervalMs: this.heartbeatIntervalMs,
      log: this.log,
      evicted: () => this.giveBack('evicted from the group'),
      beat: async () => {
        const { groupId, generationId, memberId, coordinatorId } = this.member;
        // Not a member yet (the first join): no session to keep.
        if (memberId === null || coordinatorId === null) return 'ended';
        const connection = (await this.member.connectToBrokers([coordinatorId])).get(coordinatorId);
        if (connection === undefined) return 'skipped';
        await heartbeatV4.api.async(connection, groupId, generationId, memberId, null);
        return 'sent';
      },
    });
  }

  private async stopOnce(): Promise<void> {
    this.stopped = true;
    this.giveBack('the subscription is stopping');
    this.wake.notify();
    this.progress.notify();
    await this.loop; // the in-flight fetch (at most FETCH_MAX_WAIT_MS) and batch
    await this.flushCommits();
    const revoked = [...this.partitions.keys()];
    this.partitions.clear();
    if (revoked.length > 0) await this.callback('onRevoke', revoked);
    // Closing the member leaves the group: its partitions go to the other members at once.
    await Promise.all([
      this.member.close().catch((err) => this.log.warn({ err }, 'leaving the group failed')),
      this.fetcher.close().catch(() => {}),
    ]);
  }

  /** High watermark per partition: its end read at assignment, then as of its last fetch with data. */
  private readonly highWatermarks = new Map<number, bigint>();
  /** The partition and end of the chunk the handler has (see `readToEnd`). */
  private inHand: { partition: number; next: bigint } | undefined;
  /** Fetches failed in a row (the broker away: what it has is unknown to `readToEnd`). */
  private fetchFailures = 0;

  readToEnd(): boolean {
    if (
      !this.joined ||
      this.pending !== undefined ||
      this.rejoining ||
      this.outOfGeneration ||
      this.stopped ||
      this.rejoinNeeded ||
      this.fetchFailures > 0
    )
      return false;
    for (const [p, s] of this.partitions) {
      const end = this.highWatermarks.get(p);
      const at = this.inHand?.partition === p ? this.inHand.next : s.position;
      if (end === undefined || at < end) return false;
    }
    return true;
  }

  lag(): number {
    let n = 0n;
    for (const [p, s] of this.partitions) {
      const hw = this.highWatermarks.get(p);
      if (hw !== undefined && hw > s.position) n += hw - s.position;
    }
    return Number(n);
  }

  async caughtUp(): Promise<void> {
    const { latest } = await this.bus.offsets(this.topicName);
    for (;;) {
      if (this.stopped) return;
      if (this.joined && this.pending === undefined) {
        let done = true;
        for (const [p, s] of this.partitions) if (s.position < (latest[p] ?? 0n)) done = false;
        if (done) return;
      }
      await this.progress.wait(500);
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.rejoinNeeded) {
          await this.member.joinGroup({});
          this.rejoinNeeded = false;
          this.bus.accepted(this.refusalPath);
        }
        if (this.pending !== undefined && !(await this.applyAssignment())) {
          await this.wake.wait(500);
          continue;
        }
        if (this.rejoining || this.outOfGeneration) {
          await this.wake.wait(500);
          continue;
        }
        await this.flushCommits();
        const now = Date.now();
        const positions = new Map<number, bigint>();
        let nextRetry = Number.POSITIVE_INFINITY;
        for (const [p, s] of this.partitions) {
          if (s.fetchable(now)) positions.set(p, s.position);
          else nextRetry = Math.min(nextRetry, s.retryAt);
        }
        if (positions.size === 0) {
          await this.wake.wait(Math.min(500, Math.max(10, nextRetry - now)));
          continue;
        }
        let fetched: Map<number, Fetched>;
        try {
          fetched = (await fetchRecords(this.fetcher, this.topicName, positions, FETCH_MAX_WAIT_MS)).fetched;
          this.fetchFailures = 0;
          // Reports Kafka up (or still down while another path is refused: `KafkaBus.accepted`).
          this.bus.accepted(this.refusalPath);
        } catch (err) {
          if (findErrorBy(err as Error, 'apiId', 'OFFSET_OUT_OF_RANGE')) {
            await this.resetOutOfRange([...positions.keys()]);
            continue;
          }
          this.fetchFailures++;
          if (this.handedRefusal(err)) {
            await this.wake.wait(backoffCap(this.fetchFailures, FETCH_BACKOFF));
            continue;
          }
          reportDependency('kafka', err, this.log);
          // Broker away or leadership moving: the client already retried; back off, and say so now and then.
          if ((this.fetchFailures & (this.fetchFailures - 1)) === 0)
            this.log.warn({ err, failures: this.fetchFailures }, 'fetch failed; retrying');
          await this.wake.wait(backoffCap(this.fetchFailures, FETCH_BACKOFF));
          continue;
        }
        // Every fetched partition's end first: while one is handed over, the others' records of this fetch are not
        // read yet (`readToEnd`).
        for (const [p, f] of fetched)
          if (this.partitions.get(p)?.position === positions.get(p))
            this.highWatermarks.set(p, f.highWatermark);
        this.delivering = this.deliverFetched(fetched, positions);
        try {
          await this.delivering;
        } finally {
          this.delivering = undefined;
        }
      } catch (err) {
        // A rejoin or a commit refused (`handedRefusal`: retried here); anything else is not expected (the steps above
        // handle their errors): log, back off, go on.
        if (!this.handedRefusal(err)) this.log.error({ err }, 'subscription loop error');
        await this.wake.wait(1_000);
      }
    }
  }

  /**
   * Whether `err` is the broker refusing this member (credentials rotated or revoked, a permission taken away, a
   * certificate replaced — or a broker of a rolling restart), handed to `KafkaBus.refused`, which says it and ends the
   * service if it lasts past the grace with no success of this loop between; rather than a broker away. Either way
   * the loop retries.
   */
  private handedRefusal(err: unknown): boolean {
    const refusal = this.bus.refusal(err);
    if (refusal === undefined) return false;
    this.bus.refused(this.refusalPath, refusal);
    return true;
  }

  private async deliverFetched(fetched: Map<number, Fetched>, positions: Map<number, bigint>): Promise<void> {
    for (const p of [...fetched.keys()].sort((a, b) => a - b)) {
      // A new assignment is applied before anything else is delivered (partitions may have moved).
      if (this.stopped || this.pending !== undefined || this.rejoining || this.outOfGeneration) break;
      const state = this.partitions.get(p);
      if (state === undefined || state.position !== positions.get(p)) continue;
      await this.deliver(p, state, fetched.get(p)!);
    }
  }

  /**
   * Hands one partition's fetched records to the handler in chunks of at most `maxBatch`, committing after each.
   * On a handler error the partition is re-read from its last commit, after a back-off.
   */
  private async deliver(partition: number, state: PartitionCursor, fetched: Fetched): Promise<void> {
    const { records } = fetched;
    const poison = state.poison;
    for (let i = 0, size = 0; i === 0 || i < records.length; i += size) {
      if (this.stopped || this.pending !== undefined || this.rejoining || this.outOfGeneration) return;
      size = poison.chunkSize(records[i]?.offset ?? state.position, this.bus.maxBatch);
      const chunk = records.slice(i, i + size);
      const last = i + size >= records.length;
      // The last chunk also moves past what follows its last record (control batches).
      const next = last ? fetched.next : chunk[chunk.length - 1]!.offset + 1n;
      const leaderEpoch = chunk[chunk.length - 1]?.leaderEpoch ?? -1;
      const valid: Delivered<T>[] = [];
      const dead: DeadLetter[] = [];
      const quarantined: bigint[] = [];
      const invalid: bigint[] = [];
      for (const r of chunk) {
        if (poison.isQuarantined(r.offset)) {
          const reason = poison.deadLetterReason(r.offset);
          if (reason !== undefined) dead.push(this.deadLetter(partition, r, reason, 'handler-error'));
          quarantined.push(r.offset);
          continue;
        }
        const parsed = parseRecord(this.opts.topic, partition, r);
        if (parsed.ok) valid.push(parsed.record);
        else if (!state.isDeadLettered(r.offset)) {
          dead.push(this.deadLetter(partition, r, parsed.reason));
          invalid.push(r.offset);
        }
      }
      let plan: CommitPlan;
      const lost = new AbortController();
      try {
        if (dead.length > 0) {
          this.log.warn(
            { partition, count: dead.length, kind: dead[0]!.kind, reason: dead[0]!.reason },
            'records to dlq',
          );
          await this.bus.publish(knownTopics.dlq, dead);
          countDeadLetters(dead);
          for (const o of quarantined) poison.deadLetterSent(o);
          for (const o of invalid) state.deadLetterSent(o);
        }
        // Counted as read while the handler has it (`readToEnd`), and no longer once it failed.
        this.inHand = { partition, next };
        this.batchInHand = lost;
        try {
          if (valid.length > 0)
            plan = await this.opts.handle({ partition, records: valid, signal: lost.signal });
        } finally {
          this.inHand = undefined;
          this.batchInHand = undefined;
        }
      } catch (err) {
        // Given back (`giveBack`): not a failure of the records (no back-off, no poison count).
        if (lost.signal.aborted) return this.givenBack(partition, state);
        const first = chunk[0]?.offset ?? next;
        const f = state.chunkFailed(Date.now(), HANDLER_BACKOFF, err, first, chunk.length, next);
        logChunkFailure(
          this.log,
          { partition, offset: first, failures: state.failures, retryInMs: f.delayMs },
          err,
          f,
        );
        this.progress.notify();
        return;
      }
      // Whatever the handler returned: the partition's next owner reads this chunk again.
      if (lost.signal.aborted) return this.givenBack(partition, state);
      if (state.chunkPassed(next)) this.log.info({ partition }, 'held batch passed');
      const pending =
        valid.length > 0
          ? state.handled(next, plan?.get(partition), leaderEpoch)
          : state.passed(next, quarantined.length === 0, leaderEpoch);
      if (pending) await this.commit(partition, state);
      this.progress.notify();
    }
  }

  /** A chunk given back (`Batch.signal`): nothing of it committed, and read again from the last commit if kept. */
  private givenBack(partition: number, state: PartitionCursor): void {
    state.givenBack();
    this.log.info({ partition, resumeFrom: state.position }, 'batch given back uncommitted');
    this.progress.notify();
  }

  private deadLetter(partition: number, r: RawRecord, reason: string, kind = 'invalid'): DeadLetter {
    return deadLetter({
      service: this.opts.service,
      origin: this.opts.topic.name,
      kind,
      reason,
      // A binary value (the topic's codec) travels as base64 text; anything else as the text it is.
      payload:
        r.value === null
          ? ''
          : this.opts.topic.codec?.matches(r.value)
            ? `base64:${r.value.toString('base64')}`
            : r.value.toString('utf8'),
      key: r.key === null ? undefined : r.key.toString('utf8'),
      partition,
      offset: r.offset,
    });
  }

  /** Sends the partition's pending commit if this member still owns it (the protocol: partition-cursor.ts). */
  private async commit(partition: number, state: PartitionCursor): Promise<void> {
    const owned =
      this.member.assignments?.some((a) => a.topic === this.topicName && a.partitions.includes(partition)) ??
      false;
    await state.commitPending(owned, async (offset, leaderEpoch) => {
      try {
        await this.sendCommit(partition, offset, leaderEpoch);
        this.bus.accepted(this.refusalPath);
      } catch (err) {
        if (this.handedRefusal(err)) throw err;
        if (this.outOfGeneration || findErrorBy(err as Error, 'needsRejoin', true)) {
          this.outOfGeneration = true;
          this.log.warn(
            { err, partition, offset },
            'commit refused: the group moved on without this member; nothing more handed over until it rejoins',
          );
        } else this.log.warn({ err, partition, offset }, 'commit failed; will retry');
        throw err;
      }
    });
  }

  /**
   * One OffsetCommit in the generation of the applied assignment, on the client's connection to the group coordinator
   * (its public protocol API, as `heartbeatWhileQuiescing`). Not the client's `commit`: on a refusal for the group's sake
   * (evicted, a newer generation, a rebalance under way) that one rejoins and sends the same offsets again in the new
   * generation, whoever owns the partition by then — a member evicted with a chunk in hand moved the new owner's offset
   * back (its records read twice), or, waiting for that rejoin inside a delivery that `quiesce` waits for, hung for
   * good. Refused here, the commit stays pending (partition-cursor.ts, step 4) until the new assignment is applied: a
   * partition that moved, or whose committed offset changed meanwhile, is dropped with it.
   */
  private async sendCommit(partition: number, offset: bigint, leaderEpoch: number): Promise<void> {
    const { groupId, memberId, coordinatorId } = this.member;
    if (memberId === null || coordinatorId === null || this.generation < 0) {
      this.outOfGeneration = true;
      throw new Error('not a member of the group: nothing committed');
    }
    const connection = (await this.member.connectToBrokers([coordinatorId])).get(coordinatorId);
    if (connection === undefined)
      throw new Error('no connection to the group coordinator: nothing committed');
    await offsetCommitV8.api.async(connection, groupId, this.generation, memberId, null, [
      {
        name: this.topicName,
        partitions: [
          {
            partitionIndex: partition,
            committedOffset: offset,
            committedLeaderEpoch: leaderEpoch,
            committedMetadata: null,
          },
        ],
      },
    ]);
  }

  private async flushCommits(): Promise<void> {
    for (const [p, s] of this.partitions) if (s.uncommitted !== undefined) await this.commit(p, s);
  }

  /**
   * Applies the pending assignment: revokes, then starts the added partitions at their committed offset (or
   * `from`). A partition kept across a rebalance whose committed offset changed meanwhile was owned by
   * another member in between: it is revoked and assigned again, so that the service rebuilds its state.
   * Returns false if the broker could not be asked (the assignment stays pending).
   */
  private async applyAssignment(): Promise<boolean> {
    let next: Set<number>;
    let revoked: number[];
    let added: number[];
    let starts: Map<number, { position: bigint; committed: bigint; end: bigint }>;
    let generation: number;
    // Until the assignment we computed for is still the latest one (another rebalance may complete meanwhile).
    do {
      if (this.pending === undefined) return true;
      const wanted = this.pending;
      next = wanted;
      generation = this.pendingGeneration;
      const current = new Set(this.partitions.keys());
      const kept = [...wanted].filter((p) => current.has(p));
      revoked = [...current].filter((p) => !wanted.has(p));
      added = [...wanted].filter((p) => !current.has(p));
      try {
        const committed = await this.committedOffsets([...kept, ...added]);
        for (const p of kept) {
          if ((committed.get(p) ?? -1n) !== this.partitions.get(p)!.committed) {
            revoked.push(p);
            added.push(p);
          }
        }
        starts = await this.startPositions(added, committed);
      } catch (err) {
        if (!this.handedRefusal(err))
          this.log.warn({ err }, 'could not read offsets for the new assignment; retrying');
        return false;
      }
    } while (this.pending !== next);
    this.pending = undefined;
    this.generation = generation;
    this.outOfGeneration = false;
    for (const p of revoked) this.partitions.delete(p);
    if (revoked.length > 0)
      await this.callback(
        'onRevoke',
        revoked.sort((a, b) => a - b),
      );
    for (const p of added) {
      const s = starts.get(p)!;
      this.partitions.set(p, new PartitionCursor(s.position, s.committed));
      // Known before the first fetch: a fetch at the end may return nothing for the partition (`readToEnd`).
      this.highWatermarks.set(p, s.end);
    }
    if (added.length > 0)
      await this.callback(
        'onAssign',
        added.sort((a, b) => a - b),
      );
    if (revoked.length > 0 || added.length > 0)
      this.log.info({ revoked, added, assigned: [...this.partitions.keys()] }, 'assignment applied');
    this.progress.notify();
    return true;
  }

  private async committedOffsets(partitions: number[]): Promise<Map<number, bigint>> {
    const out = new Map<number, bigint>();
    if (partitions.length === 0) return out;
    const res = await this.member.listCommittedOffsets({ topics: [{ topic: this.topicName, partitions }] });
    const list = res.get(this.topicName) ?? [];
    for (const p of partitions) out.set(p, list[p] ?? -1n);
    return out;
  }

  private async startPositions(
    partitions: number[],
    committed: Map<number, bigint>,
  ): Promise<Map<number, { position: bigint; committed: bigint; end: bigint }>> {
    const out = new Map<number, { position: bigint; committed: bigint; end: bigint }>();
    if (partitions.length === 0) return out;
    const { earliest, latest } = await this.bus.offsets(this.topicName);
    for (const p of partitions) {
      const c = committed.get(p) ?? -1n;
      const first = earliest[p] ?? 0n;
      const end = latest[p] ?? 0n;
      let fallback = (this.opts.from ?? 'earliest') === 'earliest' ? first : end;
      const at = this.opts.startAt?.get(p);
      if (at !== undefined) fallback = at < first ? first : at > end ? end : at;
      out.set(p, { position: c >= 0n ? c : fallback, committed: c, end });
    }
    return out;
  }

  /** A position outside the log (retention deleted it, or the topic was recreated): reset like `from` says. */
  private async resetOutOfRange(partitions: number[]): Promise<void> {
    try {
      const { earliest, latest } = await this.bus.offsets(this.topicName);
      for (const p of partitions) {
        const s = this.partitions.get(p);
        if (s === undefined) continue;
        const first = earliest[p] ?? 0n;
        const end = latest[p] ?? 0n;
        if (s.position >= first && s.position <= end) continue;
        const to = s.position < first || (this.opts.from ?? 'earliest') === 'earliest' ? first : end;
        this.log.warn(
          { partition: p, position: s.position, earliest: first, end, to },
          'offset out of range; reset',
        );
        s.resetTo(to);
        this.highWatermarks.set(p, end);
      }
    } catch (err) {
      if (!this.handedRefusal(err)) this.log.warn({ err }, 'could not reset out-of-range offsets');
      await this.wake.wait(1_000);
    }
  }

  private async callback(name: 'onRevoke' | 'onAssign', partitions: number[]): Promise<void> {
    try {
      await this.opts[name]?.(partitions);
    } catch (err) {
      this.log.error({ err, partitions }, `${name} failed`);
    }
  }
}

/**
 * The heartbeat loop of `quiesce` (`KafkaSubscription.heartbeatWhileQuiescing`): one `beat` every `intervalMs` until
 * the returned function is called. `beat` sends one heartbeat ('sent'), finds no connection to send it on
 * ('skipped': tried again at the next interval) or no session to keep ('ended': the loop ends), or throws the broker's
 * refusal or the connection's error. REBALANCE_IN_PROGRESS is the answer during a rebalance (the session renewed);
 * UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION mean the member was evicted (`evicted`, and the loop ends). Any other
 * failure (the broker away, the coordinator moving) is tried again at the next interval, and logged once per outage:
 * a warning at its first failure, a line with the count when the broker answers again (a warning a beat was 30 lines,
 * each with its stack, for one rebalance held through an outage).
 */
export function heartbeatUntilStopped(o: {
  intervalMs: number;
  beat: () => Promise<'sent' | 'skipped' | 'ended'>;
  log: Logger;
  evicted: () => void;
}): () => Promise<void> {
  let stopped = false;
  const wake = new Signal();
  /** Heartbeats failed in a row (the broker away), and since when. */
  let outage: { since: number; failures: number } | undefined;
  const answered = () => {
    if (outage === undefined) return;
    o.log.info(
      { failures: outage.failures, outageMs: Date.now() - outage.since },
      'heartbeat while a batch holds the rejoin: the broker answers again',
    );
    outage = undefined;
  };
  const loop = (async () => {
    for (;;) {
      await wake.wait(o.intervalMs);
      if (stopped) return;
      try {
        const beat = await o.beat();
        if (beat === 'sent') answered();
        if (beat === 'ended') return;
      } catch (err) {
        // The answer during a rebalance: the session was renewed.
        if (findErrorBy(err as Error, 'apiId', 'REBALANCE_IN_PROGRESS')) {
          answered();
          continue;
        }
        // Evicted already, or a later generation: the client's own join goes on with the group as it is.
        if (
          findErrorBy(err as Error, 'apiId', 'UNKNOWN_MEMBER_ID') ||
          findErrorBy(err as Error, 'apiId', 'ILLEGAL_GENERATION')
        ) {
          o.log.warn({ err }, 'evicted from the group while a batch held its rejoin');
          o.evicted();
          return;
        }
        // Broker away or the coordinator moving: try again at the next interval, said once per outage.
        if (outage === undefined) {
          outage = { since: Date.now(), failures: 0 };
          o.log.warn(
            { err, retryEveryMs: o.intervalMs },
            'heartbeat while a batch holds the rejoin failed; retrying (logged again when the broker answers)',
          );
        }
        outage.failures++;
      }
    }
  })();
  return async () => {
    stopped = true;
    wake.notify();
    await loop;
    if (outage !== undefined)
      o.log.info(
        { failures: outage.failures, outageMs: Date.now() - outage.since },
        'heartbeats while a batch held the rejoin ended with the broker still away',
      );
  };
}

/** Wakes waiters; `wait` resolves on `notify` or after its timeout, whichever comes first. */
class Signal {
  private readonly waiters = new Set<() => void>();

  wait(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
    });
  }

  notify(): void {
    for (const w of [...this.waiters]) w();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
