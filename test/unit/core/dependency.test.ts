import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, it } from 'node:test';
import { permanentPostgresError, untilAvailable } from '../../../src/core/dependency.ts';
import { onStopSignal } from '../../../src/core/stop-signals.ts';

const pgError = (code: string) => Object.assign(new Error(code), { code });

describe('waiting for a dependency', () => {
  it('PostgreSQL: a refused password or privilege is permanent; a server not up, or a role or database not made yet, is waited for', () => {
    for (const code of ['28P01', '42501']) assert.equal(permanentPostgresError(pgError(code)), true, code);
    for (const code of ['28000', '3D000', '57P03', 'ECONNREFUSED'])
      assert.equal(permanentPostgresError(pgError(code)), false, code);
  });

  it('retries until the dependency answers, and rethrows a permanent error at once', async () => {
    let calls = 0;
    const v = await untilAvailable(
      'test-dep',
      async () => {
        calls++;
        if (calls < 3) throw pgError('3D000');
        return 'up';
      },
      { backoff: { initialMs: 1, maxMs: 2 }, permanent: permanentPostgresError },
    );
    assert.deepEqual([v, calls], ['up', 3]);
    calls = 0;
    await assert.rejects(
      untilAvailable(
        'test-dep',
        async () => {
          calls++;
          throw pgError('28P01');
        },
        { backoff: { initialMs: 1, maxMs: 2 }, permanent: permanentPostgresError },
      ),
      /28P01/,
    );
    assert.equal(calls, 1);
  });

  it('a long wait leaves no listener behind on its stop signal (one was added per retry)', async () => {
    const stop = new AbortController();
    let calls = 0;
    await untilAvailable(
      'test-dep',
      async () => {
        if (++calls < 30) throw pgError('3D000');
        return 'up';
      },
      { backoff: { initialMs: 1, maxMs: 1 }, signal: stop.signal },
    );
    assert.equal(calls, 30);
    assert.equal(getEventListeners(stop.signal, 'abort').length, 0);
  });
});

describe('stop signals', () => {
  it('keeps its listener after the first signal, so a library re-raising the signal finds one and stops nothing', () => {
    const before = process.listenerCount('SIGTERM');
    const seen: string[] = [];
    const off = onStopSignal((s) => seen.push(s));
    try {
      process.emit('SIGTERM', 'SIGTERM');
      assert.deepEqual(seen, ['SIGTERM']);
      assert.equal(process.listenerCount('SIGTERM'), before + 1);
    } finally {
      off();
    }
    assert.equal(process.listenerCount('SIGTERM'), before);
  });
});
