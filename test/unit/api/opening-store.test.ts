import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openingStore, StoreNotOpenError } from '../../../src/api/opening-store.ts';

/** A store of two calls that counts its closes. */
function tiny() {
  return {
    closed: 0,
    async count() {
      return 7;
    },
    async close() {
      this.closed++;
    },
  };
}

test('openingStore: refuses at once while opening, then forwards every call to the store', async () => {
  let open!: (s: ReturnType<typeof tiny>) => void;
  const s = openingStore(
    'the tiny store',
    new Promise<ReturnType<typeof tiny>>((resolve) => {
      open = resolve;
    }),
  );
  assert.equal(s.isOpen, false);
  await assert.rejects(s.count(), (err: Error) => {
    assert.ok(err instanceof StoreNotOpenError);
    assert.equal(err.message, 'the tiny store is not open yet: waiting for it');
    return true;
  });
  const real = tiny();
  open(real);
  assert.equal(await s.opened, real);
  assert.equal(s.isOpen, true);
  assert.equal(await s.count(), 7);
  await s.close();
  assert.equal(real.closed, 1);
});

test('openingStore: closed before it opened, the store is closed as soon as it opens; a failed opening is kept for `opened`', async () => {
  let open!: (s: ReturnType<typeof tiny>) => void;
  const s = openingStore(
    'the tiny store',
    new Promise<ReturnType<typeof tiny>>((resolve) => {
      open = resolve;
    }),
  );
  await s.close();
  const real = tiny();
  open(real);
  await s.opened;
  assert.equal(real.closed, 1, 'nobody else would close it');

  const failing = openingStore(
    'the broken store',
    Promise.reject<ReturnType<typeof tiny>>(new Error('refused password')),
  );
  await assert.rejects(failing.opened, /refused password/);
  await assert.rejects(failing.count(), StoreNotOpenError);
});
