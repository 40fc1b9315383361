// The user secret (format, typo detection) and sealed envelopes (every byte authenticated,
// positions bound). No storage involved.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { deriveKeys, formatSecret, generateSecret, isSyncError, MisplacedError, open, parseSecret, seal, type SealContext, type SyncErrorCode } from '../../src/sync/index.js';

function throwsCode(fn: () => unknown, code: SyncErrorCode): Error {
  try {
    fn();
  } catch (e) {
    assert.ok(isSyncError(e, code), `expected ${code}, got ${String(e)}`);
    return e;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}

describe('sync secret', () => {
  it('is 14 groups of 4 characters that parse back to the same 32 bytes', () => {
    const bytes = randomBytes(32);
    const text = formatSecret(bytes);
    assert.match(text, /^([0-9A-HJKMNP-TV-Z]{4}-){13}[0-9A-HJKMNP-TV-Z]{4}$/);
    assert.deepEqual(parseSecret(text), bytes);
    assert.notEqual(generateSecret(), generateSecret());
  });

  it('tolerates case, spaces, missing dashes and the letters people confuse with digits', () => {
    const bytes = randomBytes(32);
    const text = formatSecret(bytes);
    assert.deepEqual(parseSecret(` ${text.toLowerCase().replaceAll('-', ' ')} `), bytes);
    const withLetters = text.replaceAll('0', 'O').replaceAll('1', 'l');
    assert.deepEqual(parseSecret(withLetters), bytes);
  });

  it('catches a mistyped, a missing and two swapped characters, without echoing the secret', () => {
    const text = formatSecret(randomBytes(32));
    const compact = text.replaceAll('-', '');
    const at = 17;
    const other = compact[at] === 'A' ? 'B' : 'A';
    const typo = compact.slice(0, at) + other + compact.slice(at + 1);
    const e = throwsCode(() => parseSecret(typo), 'InvalidSecret');
    assert.match(e.message, /checksum/);
    assert.ok(!e.message.includes(compact.slice(0, 8)), 'the message does not repeat the secret');
    assert.match(throwsCode(() => parseSecret(compact.slice(1)), 'InvalidSecret').message, /56 characters/);
    let swapAt = 5;
    while (compact[swapAt] === compact[swapAt + 1]) swapAt++;
    const swapped = compact.slice(0, swapAt) + compact[swapAt + 1] + compact[swapAt] + compact.slice(swapAt + 2);
    throwsCode(() => parseSecret(swapped), 'InvalidSecret');
    assert.match(throwsCode(() => parseSecret(`${compact.slice(0, 55)}U`), 'InvalidSecret').message, /position 56/);
  });

  it('derives a user id and a key that are stable, distinct per secret, and do not contain the secret', () => {
    const secret = randomBytes(32);
    const a = deriveKeys(secret);
    assert.deepEqual(deriveKeys(secret), a);
    assert.match(a.userId, /^[0-9a-f]{32}$/);
    assert.notEqual(deriveKeys(randomBytes(32)).userId, a.userId);
    assert.ok(!secret.toString('hex').includes(a.userId) && !a.sealKey.equals(secret), 'derived values are not the secret');
  });
});

describe('sealed envelopes', () => {
  const keys = deriveKeys(randomBytes(32));
  const at: SealContext = { kind: 'entries', deviceId: 'a1b2c3d4e5f60718', seq: 7, time: 1_790_000_000_000 };
  const payload = { entries: [{ id: 'x', command: 'psql --password hunter2' }] };

  it('opens at the position it was sealed for, and hides the plaintext', () => {
    const sealed = seal(keys, at, payload);
    assert.deepEqual(open(keys, at, sealed).payload, payload);
    assert.ok(!sealed.includes('hunter2') && !sealed.includes('psql'), 'no plaintext in the envelope');
    assert.notDeepEqual(seal(keys, at, payload), sealed, 'a fresh nonce each time');
  });

  it('detects a change to any single byte', () => {
    const sealed = seal(keys, at, payload);
    for (let i = 0; i < sealed.length; i++) {
      const bad = Buffer.from(sealed);
      bad[i] = bad[i]! ^ 0x01;
      assert.throws(
        () => open(keys, at, bad),
        (e: unknown) => isSyncError(e, 'Tampered'),
        `byte ${i} of ${sealed.length}`,
      );
    }
    throwsCode(() => open(keys, at, sealed.subarray(0, sealed.length - 1)), 'Tampered');
  });

  it('refuses an authentic envelope at another position, saying where it belongs', () => {
    const sealed = seal(keys, at, payload);
    for (const elsewhere of [{ seq: 8 }, { deviceId: 'ffffffffffffffff' }, { time: at.time + 1 }, { kind: 'deletions' as const }]) {
      const e = throwsCode(() => open(keys, { ...at, ...elsewhere }, sealed), 'OutOfOrder');
      assert.ok(e instanceof MisplacedError, `a MisplacedError, got ${String(e)}`);
      assert.deepEqual(e.sealedFor, at);
    }
  });

  it('is Tampered under another account key or another user id', () => {
    const sealed = seal(keys, at, payload);
    throwsCode(() => open(deriveKeys(randomBytes(32)), at, sealed), 'Tampered');
    throwsCode(() => open({ ...keys, userId: 'f'.repeat(32) }, at, sealed), 'Tampered');
  });
});
