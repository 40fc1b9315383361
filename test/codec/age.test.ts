import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { performance } from 'node:perf_hooks';
import { before, describe, it } from 'node:test';
import { Decrypter, Encrypter } from 'age-encryption';
import { decryptStream, encryptStream, generateAgeIdentity, isCodecError } from '../../src/codec/index.js';
import { pseudoRandomStream, readAll, sha256 } from '../support/data.js';
import { tempDir } from '../support/env.js';
import { run } from './helpers.js';

const AGE = '/usr/bin/age';
// Sizes around the 64 KiB STREAM chunk, where off-by-one errors live; plus a few MB.
const SIZES = [0, 1, 65535, 65536, 65537, 3 * 65536, 5 * 1024 * 1024 + 7];

async function encrypt(data: Buffer, opts: Parameters<typeof encryptStream>[0]): Promise<Buffer> {
  return readAll(Readable.from([data]).pipe(encryptStream(opts)));
}

async function decrypt(data: Buffer, opts: Parameters<typeof decryptStream>[0]): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from([data]), decryptStream(opts), async (source: AsyncIterable<Buffer>) => {
    for await (const c of source) out.push(c);
  });
  return Buffer.concat(out);
}

/** Runs `age` under a pseudo-terminal (util-linux `script`): age reads passphrases only from a TTY. */
async function ageWithTty(args: string[], typed: string[]): Promise<void> {
  const child = spawn('script', ['-qec', [AGE, ...args].map((a) => `'${a}'`).join(' '), '/dev/null'], { stdio: ['pipe', 'ignore', 'pipe'] });
  const err: Buffer[] = [];
  child.stderr.on('data', (c: Buffer) => err.push(c));
  for (const line of typed) {
    await new Promise((r) => setTimeout(r, 500));
    child.stdin.write(`${line}\n`);
  }
  child.stdin.end();
  const code = await new Promise<number | null>((r) => child.on('close', r));
  assert.equal(code, 0, Buffer.concat(err).toString());
}

describe('age encryption', () => {
  let dir: string;
  let identity: string;
  let recipient: string;
  let identityFile: string;
  before(async () => {
    dir = await tempDir('offsite-age-');
    ({ identity, recipient } = await generateAgeIdentity());
    identityFile = path.join(dir, 'key.txt');
    await writeFile(identityFile, `# created by the test\n# public key: ${recipient}\n${identity}\n`);
    await chmod(identityFile, 0o600);
  });

  it('generates an X25519 identity that age-keygen -y agrees with', async () => {
    assert.match(identity, /^AGE-SECRET-KEY-1[0-9A-Z]{58}$/);
    assert.match(recipient, /^age1[0-9a-z]{58}$/);
    assert.equal((await run('/usr/bin/age-keygen', ['-y', identityFile])).toString().trim(), recipient);
  });

  it('encrypts so that `age -d -i key.txt` decrypts identical data', async () => {
    for (const size of SIZES) {
      const plain = await readAll(pseudoRandomStream(size, `enc-${size}`));
      const cipher = await encrypt(plain, { recipients: [recipient] });
      assert.notEqual(sha256(cipher), sha256(plain));
      assert.equal(cipher.subarray(0, 22).toString(), 'age-encryption.org/v1\n', 'binary, not armored');
      const out = await run(AGE, ['-d', '-i', identityFile], cipher);
      assert.equal(out.length, size);
      assert.equal(sha256(out), sha256(plain), `size ${size}`);
    }
  });

  it('decrypts what `age -e -r` encrypted', async () => {
    for (const size of SIZES) {
      const plain = await readAll(pseudoRandomStream(size, `dec-${size}`));
      const cipher = await run(AGE, ['-e', '-r', recipient], plain);
      const out = await decrypt(cipher, { identities: [identity] });
      assert.equal(sha256(out), sha256(plain), `size ${size}`);
    }
  });

  it('takes a whole identity file (comments and all) as an identity', async () => {
    const plain = Buffer.from('from a key file');
    const cipher = await run(AGE, ['-e', '-r', recipient], plain);
    assert.deepEqual(await decrypt(cipher, { identities: [await readFile(identityFile, 'utf8')] }), plain);
  });

  it('encrypts to several recipients, each able to decrypt', async () => {
    const other = await generateAgeIdentity();
    const plain = Buffer.from('two readers');
    const cipher = await encrypt(plain, { recipients: [recipient, other.recipient] });
    assert.deepEqual(await decrypt(cipher, { identities: [identity] }), plain);
    assert.deepEqual(await decrypt(cipher, { identities: [other.identity] }), plain);
  });

  it('round-trips with a passphrase', async () => {
    const plain = await readAll(pseudoRandomStream(200_000, 'pass'));
    const cipher = await encrypt(plain, { passphrase: 'correct horse battery staple', scryptWorkFactor: 12 });
    assert.equal(sha256(await decrypt(cipher, { passphrase: 'correct horse battery staple' })), sha256(plain));
    await assert.rejects(decrypt(cipher, { passphrase: 'wrong horse' }), (e: unknown) => isCodecError(e, 'DecryptionFailed') && /passphrase/.test(e.message));
  });

  it('passphrase files interoperate with the age CLI both ways (through a pseudo-terminal)', async () => {
    const plain = Buffer.from('typed at a terminal\n');
    // A lower scrypt cost than age's 2^18 only to save time here; `age -p` below uses 2^18.
    await writeFile(path.join(dir, 'ours.age'), await encrypt(plain, { passphrase: 'tty-pass-1', scryptWorkFactor: 15 }));
    await ageWithTty(['-d', '-o', path.join(dir, 'ours.txt'), path.join(dir, 'ours.age')], ['tty-pass-1']);
    assert.deepEqual(await readFile(path.join(dir, 'ours.txt')), plain);

    await writeFile(path.join(dir, 'theirs.txt'), plain);
    await ageWithTty(['-e', '-p', '-o', path.join(dir, 'theirs.age'), path.join(dir, 'theirs.txt')], ['tty-pass-2', 'tty-pass-2']);
    assert.deepEqual(await decrypt(await readFile(path.join(dir, 'theirs.age')), { passphrase: 'tty-pass-2' }), plain);
  });

  it("passphrase files are typage's own format both ways (node:crypto scrypt, same stanza)", async () => {
    const plain = Buffer.from('the same bytes, whoever derives the key');
    const ours = await encrypt(plain, { passphrase: 'pass-a', scryptWorkFactor: 10 });
    const header = ours.subarray(0, ours.indexOf('\n---')).toString();
    assert.match(header, /^age-encryption\.org\/v1\n-> scrypt [A-Za-z0-9+/]{22} 10\n[A-Za-z0-9+/]{43}$/);
    const d = new Decrypter();
    d.addPassphrase('pass-a');
    assert.deepEqual(Buffer.from(await d.decrypt(ours)), plain);
    const e = new Encrypter();
    e.setScryptWorkFactor(10);
    e.setPassphrase('pass-b');
    assert.deepEqual(await decrypt(Buffer.from(await e.encrypt(plain)), { passphrase: 'pass-b' }), plain);
  });

  it('derives the passphrase key off the event loop', async () => {
    // 2^17 (128 MiB): typage's synchronous scrypt held the event loop for the whole derivation.
    let last = performance.now();
    let worstGapMs = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      worstGapMs = Math.max(worstGapMs, now - last);
      last = now;
    }, 5);
    const started = performance.now();
    const cipher = await encrypt(Buffer.from('x'), { passphrase: 'slow on purpose', scryptWorkFactor: 17 });
    const tookMs = performance.now() - started;
    // A loop held for the whole derivation never ran the timer: the gap up to now counts too.
    worstGapMs = Math.max(worstGapMs, performance.now() - last);
    clearInterval(timer);
    assert.deepEqual(await decrypt(cipher, { passphrase: 'slow on purpose' }), Buffer.from('x'));
    assert.ok(worstGapMs < tookMs / 2, `the event loop stalled ${worstGapMs.toFixed(0)} ms of the ${tookMs.toFixed(0)} ms derivation`);
  });

  it('refuses passphrase headers age refuses: an extra stanza, a work factor past 2^20', async () => {
    const cipher = await encrypt(Buffer.from('y'), { passphrase: 'p', scryptWorkFactor: 10 });
    const text = cipher.toString('latin1');
    const tooCostly = Buffer.from(text.replace(/^(-> scrypt \S+) 10$/m, '$1 21'), 'latin1');
    await assert.rejects(decrypt(tooCostly, { passphrase: 'p' }), (e: unknown) => isCodecError(e, 'DecryptionFailed') && /work factor is too high/.test(e.message));
    const extra = Buffer.from(text.replace(/\n---/, '\n-> X25519 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n---'), 'latin1');
    await assert.rejects(decrypt(extra, { passphrase: 'p' }), (e: unknown) => isCodecError(e, 'DecryptionFailed') && /not the only one/.test(e.message));
    assert.throws(() => encryptStream({ passphrase: 'p', scryptWorkFactor: 21 }), (e: unknown) => isCodecError(e, 'InvalidArgument'));
  });

  it('fails with DecryptionFailed for the wrong identity, naming the cause', async () => {
    const cipher = await encrypt(Buffer.from('not for you'), { recipients: [recipient] });
    const stranger = await generateAgeIdentity();
    await assert.rejects(decrypt(cipher, { identities: [stranger.identity] }), (e: unknown) => {
      assert.ok(isCodecError(e, 'DecryptionFailed'), String(e));
      assert.match(e.message, /encrypted to other recipients/);
      assert.ok(!e.message.includes(stranger.identity), 'the secret key is not in the message');
      return true;
    });
  });

  it('fails with DecryptionFailed for damaged or truncated data', async () => {
    const plain = await readAll(pseudoRandomStream(300_000, 'damage'));
    const cipher = await encrypt(plain, { recipients: [recipient] });
    const flipped = Buffer.from(cipher);
    const at = flipped.length - 1000;
    flipped[at] = (flipped[at] ?? 0) ^ 1;
    for (const bad of [flipped, cipher.subarray(0, cipher.length - 100), cipher.subarray(0, 200_000), Buffer.from('not an age file at all\n')]) {
      await assert.rejects(decrypt(bad, { identities: [identity] }), (e: unknown) => isCodecError(e, 'DecryptionFailed'));
    }
  });

  it('ends cleanly when the consumer fails midway', async () => {
    let got = 0;
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        got += chunk.length;
        cb(got > 1_000_000 ? new Error('upload failed') : null);
      },
    });
    await assert.rejects(pipeline(pseudoRandomStream(20_000_000, 'midway'), encryptStream({ recipients: [recipient] }), sink), /upload failed/);
    assert.ok(got < 5_000_000, 'stopped reading the source soon after the failure');
  });

  it('refuses malformed recipients and identities at once', () => {
    for (const bad of ['age1notarealkey', 'ssh-rsa AAAA', recipient.slice(0, -1) + (recipient.endsWith('q') ? 'p' : 'q')]) {
      assert.throws(() => encryptStream({ recipients: [bad] }), (e: unknown) => isCodecError(e, 'InvalidRecipient') && e.message.includes(bad), bad);
    }
    assert.throws(() => decryptStream({ identities: ['AGE-SECRET-KEY-1NOPE'] }), (e: unknown) => isCodecError(e, 'InvalidIdentity') && !e.message.includes('NOPE'));
    assert.throws(() => encryptStream({}), (e: unknown) => isCodecError(e, 'InvalidArgument'));
    assert.throws(() => encryptStream({ recipients: [recipient], passphrase: 'x' }), (e: unknown) => isCodecError(e, 'InvalidArgument'));
    assert.throws(() => decryptStream({}), (e: unknown) => isCodecError(e, 'InvalidArgument'));
  });
});
