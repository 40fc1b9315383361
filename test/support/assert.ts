// Assertions shared by the tests.
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { isStorageError, type StorageErrorCode } from '../../src/storage/index.js';

/**
 * Awaits `p` and asserts it rejects with an error that `isKind` recognises and whose `code` is
 * `code`; returns the error. Every layer's errors have this shape (StorageError, PostgresError...).
 */
export async function rejectsWithCode<C extends string>(
  p: Promise<unknown>,
  isKind: (e: unknown) => e is Error & { code: C },
  code: C,
): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(isKind(e), `expected an error with code ${code}, got ${inspect(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    return e;
  }
  assert.fail(`expected ${code}, but the call succeeded`);
}

/** Awaits `p` and asserts it rejects with a StorageError of `code`; returns the error. */
export function rejectsWith(p: Promise<unknown>, code: StorageErrorCode): Promise<Error> {
  return rejectsWithCode(p, (e): e is Error & { code: StorageErrorCode } => isStorageError(e), code);
}
