import assert from 'node:assert/strict';
import type { ErrorKind } from '../../src/core/errors.ts';

/**
 * For `assert.throws` / `assert.rejects`: the error carries the catalogue's stable code (and, where a test tells
 * several errors of one kind apart, a message that matches). Tests match codes, not wording.
 */
export const coded =
  (kind: ErrorKind, message?: RegExp) =>
  (err: unknown): true => {
    assert.equal((err as { code?: unknown }).code, kind.code, String(err));
    if (message !== undefined) assert.match((err as Error).message, message);
    return true;
  };
