// The user secret (format, typo detection) and sealed envelopes (every byte authenticated,
// positions bound). No storage involved.
import assert from 'node:assert/strict';
import { createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import {
  backendName,
  deriveKeys,
  formatSecret,
  generateSecret,
  isSyncError,
  legacyUserId,
  MisplacedError,
  open,
  paddedEnvelopeSize,
  parseSecret,
  payloadDigest,
  seal,
  SMALL_ENVELOPE_BYTES,
  userIdFor,
  type SealContext,
  type SyncErrorCode,
} from '../../src/sync/index.js';

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

  it('derives ids and a key that are stable, distinct per secret, and do not contain the secret', () => {
    const secret = randomBytes(32);
    const a = deriveKeys(secret);
    assert.deepEqual(deriveKeys(secret), a);
    assert.match(a.accountId, /^[0-9a-f]{32}$/);
    assert.notEqual(deriveKeys(randomBytes(32)).accountId, a.accountId);
    assert.ok(!secret.toString('hex').includes(a.accountId) && !a.sealKey.equals(secret) && !a.idKey.equals(secret), 'derived values are not the secret');
    // The id every backend used before ids were per backend: what existing accounts live under.
    assert.equal(legacyUserId(a), Buffer.from(hkdfSync('sha256', secret, 'offsite sync v1', 'user id', 16)).toString('hex'));
  });

  it('gives the account an unrelated id on each backend, the same for every spelling of one backend', () => {
    const keys = deriveKeys(randomBytes(32));
    const id = (url: string) => userIdFor(keys, backendName(url));
    const bucket = id('s3://team-sync/alice?region=eu-west-1');
    assert.match(bucket, /^[0-9a-f]{32}$/);
    assert.equal(id('s3://team-sync/alice/?endpoint=https%3A%2F%2Fs3.eu-west-1.amazonaws.com'), bucket, 'endpoint, region and a trailing slash do not matter');
    const others = [id('s3://team-sync/bob'), id('s3://other-bucket/alice'), id('http://10.0.0.5:8787'), id('/srv/sync')];
    assert.equal(new Set([bucket, ...others, legacyUserId(keys)]).size, 6, 'every backend (and the legacy id) differs');
    assert.equal(id('https://sync.example.com'), id('http://127.0.0.1:8787'), 'one server under any name: the same id');
    assert.equal(id('/mnt/nas/sync'), id('file:///Volumes/nas/sync'), 'a directory under any mount point: the same id');
    assert.notEqual(userIdFor(deriveKeys(randomBytes(32)), backendName('s3://team-sync/alice')), bucket, 'another secret, another id');
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

  it('is Tampered under another account key or another account id', () => {
    const sealed = seal(keys, at, payload);
    throwsCode(() => open(deriveKeys(randomBytes(32)), at, sealed), 'Tampered');
    throwsCode(() => open({ ...keys, accountId: 'f'.repeat(32) }, at, sealed), 'Tampered');
  });

  it('pads every small envelope to one size and larger ones by Padmé, and the payload digest ignores the padding', () => {
    const short = seal(keys, at, { entries: [{ id: 'a', command: 'ls' }] });
    const long = seal(keys, at, { entries: [{ id: 'b', command: `git commit -m "${'x'.repeat(150)}"`, cwd: '/home/user/projects/a/very/long/path' }] });
    assert.equal(short.length, SMALL_ENVELOPE_BYTES, 'a one-command batch');
    assert.equal(long.length, SMALL_ENVELOPE_BYTES, 'a longer command: the same size');
    for (const n of [481, 600, 5000, 100_000, 1_300_000]) {
      const p = paddedEnvelopeSize(n);
      assert.ok(p >= n && p <= n * 1.12, `${n} -> ${p}: at most 12% more`);
    }
    assert.equal(paddedEnvelopeSize(5000), paddedEnvelopeSize(5100), 'nearby sizes share a bucket');
    const big = seal(keys, at, { entries: Array.from({ length: 40 }, () => ({ id: randomBytes(8).toString('hex'), note: randomBytes(64).toString('base64') })) });
    assert.equal(big.length, paddedEnvelopeSize(big.length), 'a large envelope sits on a bucket boundary');
    const a = open(keys, at, seal(keys, at, payload));
    const b = open(keys, at, seal(keys, at, payload));
    assert.ok(a.digest.equals(b.digest) && a.digest.equals(payloadDigest(JSON.stringify(payload))), 'two envelopes of one payload: one digest');
  });

  it('a padded envelope opens with the decryption of earlier versions (gunzip ignores the zero padding)', () => {
    const sealed = seal(keys, at, payload);
    // Offsite before padding: AES-256-GCM with the same associated data, then gunzip of the whole plaintext.
    const headerLength = sealed.readUInt16BE(4);
    const nonceAt = 6 + headerLength;
    const decipher = createDecipheriv('aes-256-gcm', keys.sealKey, sealed.subarray(nonceAt, nonceAt + 12));
    decipher.setAAD(Buffer.concat([Buffer.from(`offsite-sync\0${keys.accountId}\0`, 'ascii'), sealed.subarray(0, nonceAt)]));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    const plaintext = Buffer.concat([decipher.update(sealed.subarray(nonceAt + 12, sealed.length - 16)), decipher.final()]);
    assert.ok(plaintext.length > 100 && plaintext.at(-1) === 0, 'the plaintext ends in padding');
    assert.deepEqual(JSON.parse(gunzipSync(plaintext).toString('utf8')), payload);
  });
});
