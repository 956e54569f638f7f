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
