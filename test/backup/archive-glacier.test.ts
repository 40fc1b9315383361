// Restoring archives from Glacier classes. RGW has no RestoreObject, so these tests go through
// a FAKE: test/support/glacier-proxy.ts, a proxy in front of the real RGW that answers as AWS
// does (GET of an archived object → 403 InvalidObjectState; POST ?restore → 202; HEAD shows
// x-amz-restore ongoing, then done with an expiry).
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, before, after } from 'node:test';
import { loadArchiveConfig, restoreSession, uploadSessions, type ArchiveConfig } from '../../src/backup/archive/index.js';
import { openCatalog } from '../../src/catalog/index.js';
import { openStorage, type Storage } from '../../src/storage/index.js';
import { runCli } from '../support/cli.js';
import { createTestBucket, s3ChildEnv, s3TestServer, tempDir } from '../support/env.js';
import { GlacierProxy } from '../support/glacier-proxy.js';
import { makeSessions, treeDigest } from './fixtures.js';

Object.assign(process.env, s3ChildEnv());
process.env.OFFSITE_MANIFEST_KEY_FILE = path.join(await tempDir('offsite-manifest-key-'), 'manifest.key');

describe('archive restore from GLACIER (through the fake Glacier proxy)', () => {
  let proxy: GlacierProxy;
  let dir: string;
  let configFile: string;
  let config: ArchiveConfig;
  let storage: Storage;

  before(async () => {
    const s = s3TestServer();
    proxy = await GlacierProxy.start({ upstream: s.endpoint, credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey } });
    dir = await tempDir('offsite-glacier-');
    const bucket = await createTestBucket('glacier');
    configFile = path.join(dir, 'offsite-archive.toml');
    const url = `s3://${bucket}?endpoint=${proxy.endpoint}&region=us-east-1`;
    await writeFile(configFile, `[destination]\nurl = "${url}"\n[sessions]\nroot = "sessions"\n[upload]\nstorage_class = "GLACIER"\n[catalog]\npath = "catalog.db"\n`);
    config = await loadArchiveConfig(configFile);
    storage = openStorage(config.destinationUrl);
    await makeSessions(path.join(dir, 'sessions'), [
      { year: 2019, id: 'COLD1' },
      { year: 2019, id: 'COLD2' },
    ]);
    const catalog = openCatalog(config.catalogPath);
    const r = await uploadSessions(config, storage, catalog);
    assert.equal(r.uploaded, 2, JSON.stringify(r.failed));
    catalog.close();
  });
  after(async () => {
    await storage.close();
    await proxy.close();
  });

  it('without --wait: requests the restore, records it as pending, and a later run fetches it', async () => {
    assert.equal((await storage.head('backups/raw/2019/COLD1.tar')).storageClass, 'GLACIER');
    const first = await runCli(['--json', 'archive', '--config', configFile, 'restore', '--session-id', 'COLD1', '--to', path.join(dir, 'out1'), '--tier', 'Bulk', '--days', '3'], { cwd: dir });
    assert.equal(first.code, 0, first.stdout + first.stderr);
    const result = first.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; status?: string }).find((e) => e.type === 'result')!;
    assert.equal(result.status, 'pending');
    const status = JSON.parse((await runCli(['--json', 'archive', '--config', configFile, 'status'], { cwd: dir })).stdout) as { pendingRestores: Array<{ sessionId: string; tier: string }> };
    assert.deepEqual(status.pendingRestores.map((p) => [p.sessionId, p.tier]), [['COLD1', 'Bulk']]);
    assert.ok(proxy.seen.some((r) => r.method === 'POST' && r.url.includes('restore')), 'a RestoreObject request was sent');

    // Still in progress: the same command does not ask again and still reports pending.
    const again = await runCli(['archive', '--config', configFile, 'restore', '--session-id', 'COLD1', '--to', path.join(dir, 'out1')], { cwd: dir });
    assert.equal(again.code, 0);
    assert.match(again.stdout, /restore in progress/);

    proxy.completeAllRestores();
    const done = await runCli(['archive', '--config', configFile, 'restore', '--session-id', 'COLD1', '--to', path.join(dir, 'out1')], { cwd: dir });
    assert.equal(done.code, 0, done.stdout + done.stderr);
    assert.match(done.stdout, /restored COLD1/);
    assert.deepEqual(await treeDigest(path.join(dir, 'out1', 'COLD1')), await treeDigest(path.join(dir, 'sessions/2019/COLD1')));
    const after = JSON.parse((await runCli(['--json', 'archive', '--config', configFile, 'status'], { cwd: dir })).stdout) as { pendingRestores: unknown[] };
    assert.deepEqual(after.pendingRestores, []);
  });

  it('with --wait: polls until the object is readable, then fetches it', async () => {
    const catalog = openCatalog(config.catalogPath);
    setTimeout(() => proxy.completeAllRestores(), 2500);
    const r = await restoreSession(config, storage, catalog, { sessionId: 'COLD2', to: path.join(dir, 'out2'), wait: true, pollSeconds: 1 });
    assert.equal(r.status, 'restored');
    assert.deepEqual(await treeDigest(path.join(dir, 'out2', 'COLD2')), await treeDigest(path.join(dir, 'sessions/2019/COLD2')));
    const heads = proxy.seen.filter((x) => x.method === 'HEAD' && x.url.includes('COLD2.tar') && !x.url.includes('manifest'));
    assert.ok(heads.length >= 2, `polled with HEAD (${heads.length})`);
    catalog.close();
  });
});
