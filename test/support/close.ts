import assert from 'node:assert/strict';

/**
 * `assert.deepEqual`, except that numbers need only agree to `relative` (default 1e-12): a figure summed in another
 * order (records re-read after a crash, a window rebuilt from the store) may differ in its last bits, and that is
 * the same figure. Anything else — keys, strings, a number off by more — fails with the path to it.
 */
export function assertDeepClose(actual: unknown, expected: unknown, relative = 1e-12, path = '$'): void {
  if (typeof expected === 'number' && typeof actual === 'number') {
    const scale = Math.max(Math.abs(expected), Math.abs(actual), Number.MIN_VALUE);
    assert.ok(
      actual === expected || Math.abs(actual - expected) / scale <= relative,
      `${path}: ${actual} vs ${expected}`,
    );
    return;
  }
  if (typeof expected !== 'object' || expected === null || typeof actual !== 'object' || actual === null) {
    assert.deepEqual(actual, expected, path);
    return;
  }
  assert.equal(Array.isArray(actual), Array.isArray(expected), `${path}: array vs object`);
  assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), `${path}: keys`);
  for (const k of Object.keys(expected))
    assertDeepClose(
      (actual as Record<string, unknown>)[k],
      (expected as Record<string, unknown>)[k],
      relative,
      `${path}.${k}`,
    );
}
