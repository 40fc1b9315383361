// Assertions shared by the storage tests.
import assert from 'node:assert/strict';
import { isStorageError, type StorageErrorCode } from '../../src/storage/index.js';

/** Awaits `p` and asserts it rejects with a StorageError of `code`; returns the error. */
export async function rejectsWith(p: Promise<unknown>, code: StorageErrorCode): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(isStorageError(e), `expected a StorageError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    return e;
  }
  assert.fail(`expected ${code}, but the call succeeded`);
}
