// The storage contract: one suite that every adapter runs unchanged (local directory, S3 on
// RGW). An adapter joins by calling storageContract() with a factory for a fresh, empty store.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { describe, it, before, after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { downloadToFile, type ListEntry, type Storage } from '../../src/storage/index.js';
import { md5, pseudoRandomStream, readAll, sha256OfStream } from '../support/data.js';
import { rejectsWith } from '../support/assert.js';

export interface ContractTarget {
  storage: Storage;
  /** A URL that openStorage() resolves to the same store (for child processes). */
  url: string;
  /** Extra environment for child processes (credentials). */
  childEnv: Record<string, string>;
}

const childScript = fileURLToPath(new URL('../support/conditional-put-child.ts', import.meta.url));

async function collect(it: AsyncIterable<ListEntry>): Promise<ListEntry[]> {
  const out: ListEntry[] = [];
  for await (const e of it) out.push(e);
  return out;
}

const keysOf = (entries: ListEntry[]) => entries.map((e) => (e.type === 'object' ? e.key : `PRE ${e.prefix}`));

/** Runs `count` writers in separate processes, released together, each trying to create `key`. */
async function raceConditionalCreates(t: ContractTarget, key: string, count: number): Promise<{ winners: string[]; losers: string[] }> {
  const children = Array.from({ length: count }, (_, i) => {
    const child = spawn(process.execPath, ['--import', 'tsx', childScript], {
      env: { ...process.env, ...t.childEnv, STORAGE_URL: t.url, KEY: key, VALUE: `writer-${i}` },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout! });
    const ready = new Promise<void>((resolve) => lines.once('line', () => resolve()));
    const result = new Promise<string>((resolve) => lines.on('line', (l) => l !== 'ready' && resolve(l)));
    return { i, child, ready, result };
  });
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.child.stdin!.end('go\n');
  const results = await Promise.all(children.map(async (c) => ({ i: c.i, line: await c.result })));
  return {
    winners: results.filter((r) => r.line === 'won').map((r) => `writer-${r.i}`),
    losers: results.filter((r) => r.line !== 'won').map((r) => r.line),
  };
}

export function storageContract(name: string, open: () => Promise<ContractTarget>): void {
  describe(`storage contract: ${name}`, () => {
    let t: ContractTarget;
    let s: Storage;
    before(async () => {
      t = await open();
      s = t.storage;
    });
    after(async () => {
      await s.close();
    });

    it('round-trips bytes, reports size and an MD5 ETag for a single put', async () => {
      const data = Buffer.from('hello, offsite\n');
      const put = await s.put('basic/hello.txt', data, { contentType: 'text/plain' });
      assert.equal(put.size, data.length);
      assert.equal(put.etag, md5(data));
      const got = await s.get('basic/hello.txt');
      assert.deepEqual(await readAll(got.body), data);
      assert.equal(got.info.size, data.length);
      assert.equal(got.info.etag, put.etag);
      const head = await s.head('basic/hello.txt');
      assert.equal(head.size, data.length);
      assert.equal(head.etag, put.etag);
      assert.equal(head.contentType, 'text/plain');
      assert.ok(Math.abs(head.lastModified.getTime() - Date.now()) < 5 * 60_000, 'lastModified is recent');
    });

    it('replaces an object on a plain put', async () => {
      await s.put('basic/replace', 'one');
      await s.put('basic/replace', 'two, longer');
      assert.equal((await readAll((await s.get('basic/replace')).body)).toString(), 'two, longer');
    });

    it('stores empty objects', async () => {
      const put = await s.put('basic/empty', Buffer.alloc(0));
      assert.equal(put.size, 0);
      assert.equal(put.etag, md5(''));
      const got = await s.get('basic/empty');
      assert.equal((await readAll(got.body)).length, 0);
      assert.equal((await s.head('basic/empty')).size, 0);
      const fromStream = await s.put('basic/empty-stream', pseudoRandomStream(0));
      assert.equal(fromStream.size, 0);
      assert.equal((await s.head('basic/empty-stream')).size, 0);
    });

    it('accepts keys with spaces, +, %, unicode and lists them verbatim', async () => {
      const keys = ['odd/a b.txt', 'odd/a+b.txt', 'odd/100%.txt', 'odd/ünïcødé/日本語.txt', 'odd/emoji 🎉.bin', 'odd/q?x=1&y#z'];
      for (const [i, k] of keys.entries()) await s.put(k, `v${i}`);
      for (const [i, k] of keys.entries()) assert.equal((await readAll((await s.get(k)).body)).toString(), `v${i}`, k);
      const listed = keysOf(await collect(s.list({ prefix: 'odd/' })));
      assert.deepEqual(listed, [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    });

    it('round-trips metadata, tags and storage class', async () => {
      await s.put('meta/obj', 'x', {
        metadata: { 'Sha256': 'abc123', 'session-id': 'S1' },
        tags: { archive: 'fast', backup: 'deep-archive' },
        storageClass: 'GLACIER',
        contentType: 'application/x-tar',
      });
      const head = await s.head('meta/obj');
      assert.deepEqual(head.metadata, { sha256: 'abc123', 'session-id': 'S1' });
      assert.equal(head.storageClass, 'GLACIER');
      assert.equal(head.contentType, 'application/x-tar');
      assert.deepEqual(await s.getTags('meta/obj'), { archive: 'fast', backup: 'deep-archive' });
      const listed = (await collect(s.list({ prefix: 'meta/' }))).find((e) => e.type === 'object');
      assert.equal(listed?.type === 'object' && listed.storageClass, 'GLACIER');
      await s.put('meta/plain', 'y');
      assert.equal((await s.head('meta/plain')).storageClass, 'STANDARD');
      assert.deepEqual(await s.getTags('meta/plain'), {});
      assert.deepEqual((await s.head('meta/plain')).metadata, {});
    });

    it('reports NotFound for a missing key, and deleting one is not an error', async () => {
      await rejectsWith(s.get('missing/nothing-here'), 'NotFound');
      await rejectsWith(s.head('missing/nothing-here'), 'NotFound');
      await rejectsWith(s.getTags('missing/nothing-here'), 'NotFound');
      await s.delete('missing/nothing-here');
      const err = await rejectsWith(s.head('missing/nothing-here'), 'NotFound');
      assert.match(err.message, /missing\/nothing-here/);
    });

    it('deletes one and many objects', async () => {
      await s.put('del/one', '1');
      await s.delete('del/one');
      await rejectsWith(s.head('del/one'), 'NotFound');
      const keys = Array.from({ length: 25 }, (_, i) => `del/many-${String(i).padStart(2, '0')}`);
      await Promise.all(keys.map((k) => s.put(k, k)));
      const res = await s.deleteMany([...keys, 'del/never-existed']);
      assert.equal(res.deleted, keys.length + 1);
      assert.deepEqual(await collect(s.list({ prefix: 'del/' })), []);
    });

    it('ifNoneMatch "*" creates once and refuses to overwrite', async () => {
      const first = await s.put('cond/create', 'first', { ifNoneMatch: '*' });
      await rejectsWith(s.put('cond/create', 'second', { ifNoneMatch: '*' }), 'PreconditionFailed');
      assert.equal((await readAll((await s.get('cond/create')).body)).toString(), 'first');
      assert.equal((await s.head('cond/create')).etag, first.etag);
    });

    it('ifMatch replaces only the expected version; a stale ETag is refused', async () => {
      const v1 = await s.put('cond/swap', 'v1');
      const v2 = await s.put('cond/swap', 'v2', { ifMatch: v1.etag });
      assert.notEqual(v2.etag, v1.etag);
      await rejectsWith(s.put('cond/swap', 'v3-stale', { ifMatch: v1.etag }), 'PreconditionFailed');
      assert.equal((await readAll((await s.get('cond/swap')).body)).toString(), 'v2');
      await rejectsWith(s.put('cond/absent', 'x', { ifMatch: v1.etag }), 'PreconditionFailed');
      await rejectsWith(s.head('cond/absent'), 'NotFound');
    });

    it('conditional reads: get with a stale ifMatch is refused', async () => {
      const v1 = await s.put('cond/read', 'v1');
      await s.put('cond/read', 'v2');
      await rejectsWith(s.get('cond/read', { ifMatch: v1.etag }), 'PreconditionFailed');
    });

    it('20 concurrent creates of one key from separate processes: exactly one wins', async () => {
      const { winners, losers } = await raceConditionalCreates(t, 'race/one-key', 20);
      assert.equal(winners.length, 1, `winners: ${winners.join(', ')}; others: ${losers.join(', ')}`);
      assert.equal(losers.length, 19);
      for (const l of losers) assert.equal(l, 'lost PreconditionFailed');
      assert.equal((await readAll((await s.get('race/one-key')).body)).toString(), winners[0]);
    });

    it('reads byte ranges', async () => {
      const data = Buffer.from('0123456789abcdefghij');
      await s.put('range/obj', data);
      assert.equal((await readAll((await s.get('range/obj', { range: { start: 5, end: 9 } })).body)).toString(), '56789');
      const tail = await s.get('range/obj', { range: { start: 15 } });
      assert.equal((await readAll(tail.body)).toString(), 'fghij');
      assert.equal(tail.info.size, data.length, 'info.size is the whole object even for a range');
    });

    it('downloadToFile: ranged GETs in parallel, written at their offsets, give the same bytes; a stale ETag is refused', async () => {
      const data = await readAll(pseudoRandomStream(3 * 1024 * 1024 + 12345, 'ranged'));
      await s.put('ranged/obj', data);
      const dir = await mkdtemp(path.join(tmpdir(), 'offsite-ranged-'));
      // Many ranges in flight listen on one signal: no "possible EventTarget memory leak" warning.
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
      process.on('warning', onWarning);
      try {
        for (const [concurrency, partSize] of [[4, 256 * 1024], [1, 256 * 1024], [8, 8 * 1024 * 1024], [12, 64 * 1024]] as const) {
          const file = path.join(dir, `copy-${concurrency}-${partSize}`);
          const seen: number[] = [];
          const { parts } = await downloadToFile(s, 'ranged/obj', file, { concurrency, partSize, onProgress: (n) => seen.push(n) });
          assert.equal(parts, concurrency === 1 || partSize >= data.length ? 1 : Math.ceil(data.length / partSize));
          const copy = await readFile(file);
          assert.equal(md5(copy), md5(data), `concurrency ${concurrency}, parts of ${partSize}`);
          assert.equal(seen.at(-1), data.length);
          assert.equal((await stat(file)).mode & 0o777, 0o600);
        }
        await new Promise((r) => setImmediate(r));
        assert.deepEqual(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')), []);
        // Never through a link planted at the destination's name: refused, its target untouched.
        const outside = path.join(dir, 'outside.txt');
        await writeFile(outside, 'not yours');
        await symlink(outside, path.join(dir, 'planted'));
        await assert.rejects(downloadToFile(s, 'ranged/obj', path.join(dir, 'planted')), (e: NodeJS.ErrnoException) => e.code === 'EEXIST');
        assert.equal(await readFile(outside, 'utf8'), 'not yours');
        const stale = await s.head('ranged/obj');
        await s.put('ranged/obj', data.subarray(1));
        await rejectsWith(downloadToFile(s, 'ranged/obj', path.join(dir, 'stale'), { info: stale, concurrency: 4, partSize: 256 * 1024 }), 'PreconditionFailed');
      } finally {
        process.off('warning', onWarning);
        await rm(dir, { recursive: true, force: true });
      }
    });

    describe('listing 2,500 keys', () => {
      const keys: string[] = [];
      before(async () => {
        for (let d = 0; d < 5; d++) for (let i = 0; i < 500; i++) keys.push(`list/d${d}/k${String(i).padStart(4, '0')}`);
        let next = 0;
        await Promise.all(
          Array.from({ length: 16 }, async () => {
            while (next < keys.length) {
              const k = keys[next++]!;
              await s.put(k, k);
            }
          }),
        );
      });

      it('lists every key once, in order, across pages', async () => {
        const entries = await collect(s.list({ prefix: 'list/' }));
        assert.deepEqual(keysOf(entries), keys);
        const first = entries[0]!;
        assert.equal(first.type === 'object' && first.size, Buffer.byteLength(keys[0]!));
      });

      it('rolls keys up into common prefixes with a delimiter', async () => {
        assert.deepEqual(keysOf(await collect(s.list({ prefix: 'list/', delimiter: '/' }))), [0, 1, 2, 3, 4].map((d) => `PRE list/d${d}/`));
        assert.deepEqual(keysOf(await collect(s.list({ delimiter: '/' }))).filter((k) => k === 'PRE list/'), ['PRE list/']);
      });

      it('narrows by prefix and starts after a key', async () => {
        assert.equal((await collect(s.list({ prefix: 'list/d3/' }))).length, 500);
        assert.deepEqual(keysOf(await collect(s.list({ prefix: 'list/d3/k01' }))), keys.filter((k) => k.startsWith('list/d3/k01')));
        const after = await collect(s.list({ prefix: 'list/', startAfter: 'list/d2/k0499' }));
        assert.deepEqual(keysOf(after), keys.filter((k) => k > 'list/d2/k0499'));
        assert.equal(after.length, 1000);
        assert.deepEqual(keysOf(await collect(s.list({ prefix: 'list/', delimiter: '/', startAfter: 'list/d2/k0499' }))), ['PRE list/d3/', 'PRE list/d4/']);
      });

      it('deletes them all with deleteMany', async () => {
        const res = await s.deleteMany(keys);
        assert.equal(res.deleted, keys.length);
        assert.deepEqual(await collect(s.list({ prefix: 'list/' })), []);
      });
    });

    it('round-trips a 300 MB stream (multipart on S3), checked by SHA-256', async () => {
      const size = 300 * 1024 * 1024;
      const source = await sha256OfStream(pseudoRandomStream(size, 'big'));
      let progress = 0;
      const put = await s.put('big/300mb.bin', pseudoRandomStream(size, 'big'), { onProgress: (n) => (progress = n), metadata: { sha256: source.sha256 } });
      assert.equal(put.size, size);
      assert.ok(put.etag.length > 0, 'an ETag is reported (RGW gives none after multipart: the adapter asks)');
      assert.ok(progress > 0, 'progress was reported');
      const head = await s.head('big/300mb.bin');
      assert.equal(head.size, size);
      assert.equal(head.etag, put.etag);
      assert.equal(head.metadata.sha256, source.sha256);
      const got = await sha256OfStream((await s.get('big/300mb.bin')).body);
      assert.deepEqual(got, source);
      const mid = await readAll((await s.get('big/300mb.bin', { range: { start: 100 * 1024 * 1024, end: 100 * 1024 * 1024 + 99 } })).body);
      assert.equal(mid.length, 100);
      await s.delete('big/300mb.bin');
    });

    it('an aborted put leaves no object', async () => {
      const ac = new AbortController();
      const p = s.put('abort/obj', pseudoRandomStream(64 * 1024 * 1024, 'abort'), { signal: ac.signal, onProgress: (n) => n > 1024 * 1024 && ac.abort(new Error('stop')) });
      await assert.rejects(p);
      await rejectsWith(s.head('abort/obj'), 'NotFound');
      // Let any request still settling finish, so the next test's request counts are its own.
      for (let last = -1; last !== s.stats().totalRequests; ) {
        last = s.stats().totalRequests;
        await new Promise((r) => setTimeout(r, 300));
      }
    });

    it('a body read only after other awaits still yields every byte (the stream waits for its reader)', async () => {
      // What restore does: get(), then open the target file, then pipe. A body that flows as
      // soon as get() returns drops its first chunks into the void meanwhile.
      const data = Buffer.alloc(1024 * 1024);
      for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 10)) & 0xff;
      await s.put('late/reader.bin', data);
      const got = await s.get('late/reader.bin');
      await new Promise((r) => setTimeout(r, 200));
      await new Promise((r) => setImmediate(r));
      const back = await readAll(got.body);
      assert.equal(back.length, data.length);
      assert.ok(back.equals(data), 'the same bytes');
    });

    it('counts requests by operation and bytes up and down', async () => {
      const before = s.stats();
      await s.put('stats/a', Buffer.alloc(1000, 1));
      await readAll((await s.get('stats/a')).body);
      await s.head('stats/a');
      const after = s.stats();
      const delta = (op: string) => (after.requests[op] ?? 0) - (before.requests[op] ?? 0);
      assert.equal(delta('PutObject'), 1);
      assert.equal(delta('GetObject'), 1);
      assert.equal(delta('HeadObject'), 1);
      assert.equal(after.bytesUp - before.bytesUp, 1000);
      assert.equal(after.bytesDown - before.bytesDown, 1000);
      assert.equal(after.totalRequests - before.totalRequests, 3);
    });

    it('rejects invalid keys with InvalidKey', async () => {
      await rejectsWith(s.put('', 'x'), 'InvalidKey');
      await rejectsWith(s.put('x'.repeat(1025), 'x'), 'InvalidKey');
      await rejectsWith(s.put('bad\u0001key', 'x'), 'InvalidKey');
    });
  });
}

