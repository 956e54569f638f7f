import assert from 'node:assert/strict';
import { it } from 'node:test';
import { topicConfigs } from '../../../src/runtime/kafka/bus.ts';

// With replicas, acks=all waits for the replicas in sync only; the broker's default of one in sync lets that be the
// leader alone, and a record acknowledged just before the leader fails is lost.
it('topics are created with min.insync.replicas one below a replication factor above 1, compacted where asked', () => {
  assert.deepEqual(topicConfigs({ compacted: false }, 1), []);
  assert.deepEqual(topicConfigs({ compacted: true }, 1), [{ name: 'cleanup.policy', value: 'compact' }]);
  assert.deepEqual(topicConfigs({ compacted: false }, 3), [{ name: 'min.insync.replicas', value: '2' }]);
  assert.deepEqual(topicConfigs({ compacted: true }, 2), [
    { name: 'cleanup.policy', value: 'compact' },
    { name: 'min.insync.replicas', value: '1' },
  ]);
});

// A restarted predictor reads predictions and predictor.aci back as far as its warm-up reaches (a week and an hour):
// created with the broker's default week, the oldest states it restores α_t from were gone.
it('topics are created with their own retention (the restore topics: 8 days), or the one `topics create --retention` gives', () => {
  assert.deepEqual(topicConfigs({ retentionMs: 691_200_000 }, 1), [
    { name: 'retention.ms', value: '691200000' },
  ]);
  assert.deepEqual(topicConfigs({}, 1, 864_000_000), [{ name: 'retention.ms', value: '864000000' }]);
  assert.deepEqual(topicConfigs({ retentionMs: 691_200_000 }, 1, 864_000_000), [
    { name: 'retention.ms', value: '864000000' },
  ]);
  // Compaction keeps the latest per key, not a time.
  assert.deepEqual(topicConfigs({ compacted: true }, 1, 864_000_000), [
    { name: 'cleanup.policy', value: 'compact' },
  ]);
});

// Kafka never compacts the active segment: `trades.resume`, written after every batch of a pair's trades, rolls hourly
// so that a restart reading it whole reads about an hour of writes, not a week's.
it('a topic with its own segment.ms is created with it', () => {
  assert.deepEqual(topicConfigs({ compacted: true, segmentMs: 3_600_000 }, 1), [
    { name: 'cleanup.policy', value: 'compact' },
    { name: 'segment.ms', value: '3600000' },
  ]);
});
