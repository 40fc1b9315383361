// `offsite put|get|cat|ls|rm`, run as the real executable against a local directory bucket and
// the test RGW: content checked by SHA-256, errors checked for one clear line and the exit code.
import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, it, before } from 'node:test';
import { pseudoRandomStream, sha256 } from '../support/data.js';
import { runCli } from '../support/cli.js';
import { createTestBucket, s3ChildEnv, s3TestServer, s3Url, tempDir } from '../support/env.js';

async function randomFile(file: string, size: number, seed: string): Promise<string> {
  await pipeline(pseudoRandomStream(size, seed), createWriteStream(file));
  return sha256(await readFile(file));
}

/** One line on stderr, no stack trace. */
function assertOneLineError(stderr: string): void {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
  assert.match(lines[0]!, /^offsite: /);
  assert.ok(!/\n\s+at /.test(stderr), 'no stack trace');
}

describe('offsite objects on a local directory bucket', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('offsite-cli-');
  });

  it('put, ls, cat, get and rm round-trip a file', async () => {
    const src = path.join(dir, 'data.bin');
    const digest = await randomFile(src, 5 * 1024 * 1024 + 7, 'cli-local');
    const put = await runCli(['put', src, './bucket/dir/data.bin'], { cwd: dir });
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, /uploaded .*data\.bin -> \.\/bucket\/dir\/data\.bin \(5\.00 MiB/);
    assert.equal(sha256(await readFile(path.join(dir, 'bucket/dir/data.bin'))), digest, 'stored as a plain file');

    const ls = await runCli(['ls', './bucket'], { cwd: dir });
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /PRE\s+dir\//);
    const lsr = await runCli(['--json', 'ls', '-r', './bucket'], { cwd: dir });
    const entries = JSON.parse(lsr.stdout) as Array<{ key: string; size: number }>;
    assert.deepEqual(entries.map((e) => [e.key, e.size]), [['dir/data.bin', 5 * 1024 * 1024 + 7]]);

    const cat = await runCli(['cat', './bucket/dir/data.bin'], { cwd: dir });
    assert.equal(cat.code, 0);
    const get = await runCli(['get', './bucket/dir/data.bin', 'copy.bin'], { cwd: dir });
    assert.equal(get.code, 0, get.stderr);
    assert.equal(sha256(await readFile(path.join(dir, 'copy.bin'))), digest);

    // A link planted where the partial file goes is removed, not written through.
    await writeFile(path.join(dir, 'outside.txt'), 'not yours');
    await symlink(path.join(dir, 'outside.txt'), path.join(dir, 'copy2.bin.offsite-partial'));
    const planted = await runCli(['get', './bucket/dir/data.bin', 'copy2.bin'], { cwd: dir });
    assert.equal(planted.code, 0, planted.stderr);
    assert.equal(sha256(await readFile(path.join(dir, 'copy2.bin'))), digest);
    assert.equal(await readFile(path.join(dir, 'outside.txt'), 'utf8'), 'not yours');
    assert.equal(((await stat(path.join(dir, 'copy2.bin'))).mode & 0o777).toString(8), '600');

    const again = await runCli(['get', './bucket/dir/data.bin', 'copy.bin'], { cwd: dir });
    assert.equal(again.code, 2, 'refuses to overwrite without --force');
    assertOneLineError(again.stderr);
    assert.match(again.stderr, /--force/);

    const rm = await runCli(['rm', './bucket/dir/data.bin'], { cwd: dir });
    assert.equal(rm.code, 0, rm.stderr);
    await assert.rejects(stat(path.join(dir, 'bucket/dir/data.bin')));
    const rmAgain = await runCli(['rm', './bucket/dir/data.bin'], { cwd: dir });
    assert.equal(rmAgain.code, 3, 'a missing object is reported');
    assert.equal((await runCli(['rm', '-f', './bucket/dir/data.bin'], { cwd: dir })).code, 0);
  });

  it('put from stdin with --if-none-match creates once, then exits 6', async () => {
    const first = await runCli(['put', '--if-none-match', '-', './bucket/once.txt'], { cwd: dir, input: 'first' });
    assert.equal(first.code, 0, first.stderr);
    const second = await runCli(['put', '--if-none-match', '-', './bucket/once.txt'], { cwd: dir, input: 'second' });
    assert.equal(second.code, 6);
    assertOneLineError(second.stderr);
    assert.equal(await readFile(path.join(dir, 'bucket/once.txt'), 'utf8'), 'first');
  });

  it('a missing object exits 3 with one line; --debug adds the stack; --json adds an error object', async () => {
    await writeFile(path.join(dir, 'x'), 'x');
    const r = await runCli(['cat', './bucket/missing.txt'], { cwd: dir });
    assert.equal(r.code, 3);
    assertOneLineError(r.stderr);
    assert.match(r.stderr, /no object at key "missing\.txt"/);
    const d = await runCli(['--debug', 'cat', './bucket/missing.txt'], { cwd: dir });
    assert.match(d.stderr, /\n\s+at /, 'stack with --debug');
    const j = await runCli(['--json', 'cat', './bucket/missing.txt'], { cwd: dir });
    assert.deepEqual(JSON.parse(j.stdout).error.code, 'NotFound');
  });

  it('a bad URL exits 2 with one line that shows a good one', async () => {
    for (const url of ['ftp://host/x', 's3://', 's3://bucket/k?endpoint=nonsense', 's3://AKIA:secret@bucket/k', 's3://bucket/k?colour=blue']) {
      const r = await runCli(['cat', url], { cwd: dir });
      assert.equal(r.code, 2, `${url}: ${r.stderr}`);
      assertOneLineError(r.stderr);
      assert.match(r.stderr, /s3:\/\/my-bucket/, 'shows an example');
      assert.ok(!r.stderr.includes('secret'), 'a secret in a URL is not echoed');
    }
  });

  it('links planted in the bucket: cat and put refuse them (exit 4), ls does not list them', async () => {
    const base = await tempDir('offsite-cli-links-');
    const outside = path.join(base, 'outside');
    await mkdir(outside);
    const secretFile = path.join(outside, 'secret.txt');
    const secret = 'export DB_PASSWORD=hunter2-s3cret\n';
    await writeFile(secretFile, secret);
    assert.equal((await runCli(['put', '-', './bucket/real.txt'], { cwd: base, input: 'real' })).code, 0);
    await symlink(secretFile, path.join(base, 'bucket/link.txt'));
    await symlink(outside, path.join(base, 'bucket/dirlink'));

    const cat = await runCli(['cat', './bucket/link.txt'], { cwd: base });
    assert.equal(cat.code, 4, cat.stderr);
    assert.equal(cat.stdout, '', 'nothing of the file outside is printed');
    assertOneLineError(cat.stderr);
    assert.match(cat.stderr, /"link\.txt" inside the bucket directory is a symbolic link/);
    const catThrough = await runCli(['cat', './bucket/dirlink/secret.txt'], { cwd: base });
    assert.equal(catThrough.code, 4, catThrough.stderr);
    assert.ok(!catThrough.stdout.includes('hunter2'), 'nothing of the file outside is printed');

    const put = await runCli(['put', '-', './bucket/dirlink/secret.txt'], { cwd: base, input: 'overwritten' });
    assert.equal(put.code, 4, put.stderr);
    assertOneLineError(put.stderr);
    assert.match(put.stderr, /"dirlink" inside the bucket directory is a symbolic link/);
    const putDeeper = await runCli(['put', '-', './bucket/dirlink/new/planted.txt'], { cwd: base, input: 'planted' });
    assert.equal(putDeeper.code, 4, putDeeper.stderr);
    assert.equal(sha256(await readFile(secretFile)), sha256(secret), 'the file outside is unchanged');
    assert.deepEqual(await readdir(outside), ['secret.txt'], 'nothing was created outside');

    const ls = await runCli(['--json', 'ls', '-r', './bucket'], { cwd: base });
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual((JSON.parse(ls.stdout) as Array<{ key: string }>).map((e) => e.key), ['real.txt'], 'links are not listed');
  });

  it('under umask 000, put makes the bucket private: files 0600, directories 0700', async () => {
    const base = await tempDir('offsite-cli-umask-');
    const saved = process.umask(0);
    let put;
    try {
      put = await runCli(['put', '-', './bucket/deep/dir/object.txt'], { cwd: base, input: 'private' });
    } finally {
      process.umask(saved);
    }
    assert.equal(put.code, 0, put.stderr);
    const found: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const name of await readdir(d)) {
        const p = path.join(d, name);
        const st = await lstat(p);
        found.push(`${path.relative(base, p)} ${(st.mode & 0o777).toString(8)}`);
        if (st.isDirectory()) await walk(p);
      }
    };
    await walk(base);
    assert.ok(found.includes('bucket/deep/dir/object.txt 600'), found.join('\n'));
    assert.deepEqual(found.filter((f) => !/ (600|700)$/.test(f)), [], `nothing readable by others:\n${found.join('\n')}`);
  });

  it('--help explains commands and exit codes', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0);
    for (const word of ['put', 'get', 'cat', 'ls', 'rm', 'doctor', 'snapshot', 'Exit codes']) assert.match(r.stdout, new RegExp(word));
    const put = await runCli(['put', '--help']);
    assert.match(put.stdout, /--storage-class/);
    const bad = await runCli(['frobnicate']);
    assert.equal(bad.code, 2);
  });
});

describe('offsite objects on S3 (Ceph RGW)', () => {
  let bucket: string;
  before(async () => {
    bucket = await createTestBucket('cli');
  });
  const env = () => ({ ...s3ChildEnv() });


  it('multipart put and get through s3:// URLs, checked by SHA-256', async () => {
    const dir = await tempDir();
    const src = path.join(dir, 'big.bin');
    const digest = await randomFile(src, 21 * 1024 * 1024, 'cli-s3');
    const objectUrl = `s3://${bucket}/in/big.bin?endpoint=${encodeURIComponent(s3TestServer().endpoint)}&part_size=5&concurrency=2`;
    const put = await runCli(['--json', 'put', '--tag', 'kind=test', '--meta', 'origin=cli', src, objectUrl], { env: env() });
    assert.equal(put.code, 0, put.stderr);
    const res = JSON.parse(put.stdout) as { etag: string; requests: Record<string, number> };
    assert.match(res.etag, /-5$/, 'five 5 MiB parts');
    assert.equal(res.requests.UploadPart, 5);
    const get = await runCli(['get', objectUrl, path.join(dir, 'back.bin')], { env: env() });
    assert.equal(get.code, 0, get.stderr);
    assert.equal(sha256(await readFile(path.join(dir, 'back.bin'))), digest);
    const ls = await runCli(['--json', 'ls', s3Url(bucket, 'in/')], { env: env() });
    assert.deepEqual((JSON.parse(ls.stdout) as Array<{ key: string }>).map((e) => e.key), ['in/big.bin']);
    const rm = await runCli(['rm', '-r', s3Url(bucket, 'in/')], { env: env() });
    assert.equal(rm.code, 0, rm.stderr);
    assert.deepEqual(JSON.parse((await runCli(['--json', 'ls', '-r', s3Url(bucket)], { env: env() })).stdout), []);

  });

  it('a wrong secret: exit 4, one line naming the credential source, the secret never printed', async () => {
    const r = await runCli(['cat', `s3://${bucket}/k?endpoint=${encodeURIComponent(s3TestServer().endpoint)}`], {
      env: { ...env(), AWS_SECRET_ACCESS_KEY: 'not-the-right-secret-123' },
    });
    assert.equal(r.code, 4, r.stderr);
    assertOneLineError(r.stderr);
    assert.match(r.stderr, /AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY/);
    assert.ok(!r.stderr.includes('not-the-right-secret-123'));
  });

  it('a missing bucket: exit 5, one line saying how to create it', async () => {
    const r = await runCli(['put', '-', `s3://missing-bucket-cli/k?endpoint=${encodeURIComponent(s3TestServer().endpoint)}`], { env: env(), input: 'x' });
    assert.equal(r.code, 5, r.stderr);
    assertOneLineError(r.stderr);
    assert.match(r.stderr, /missing-bucket-cli.*create it/);
  });
});
