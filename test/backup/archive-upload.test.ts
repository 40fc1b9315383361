// What a run records and plans, on the test RGW: whether a session is archived is a fact of the
// catalog (session id + destination), not of the flags the current command was given; a run
// that fails at one of its steps is recorded as failed, with the reason.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { openCatalog } from '../../src/catalog/index.js';
import { generateAgeIdentity } from '../../src/codec/index.js';
import { s3ChildEnv, tempDir } from '../support/env.js';
import { allowAllBut, archiveEnv, createRgwUser, jsonEvents } from './archive-env.js';
import { makeSessions } from './fixtures.js';

Object.assign(process.env, s3ChildEnv());
process.env.OFFSITE_MANIFEST_KEY_FILE = path.join(await tempDir('offsite-manifest-key-'), 'manifest.key');

interface Listing {
  sessionId: string;
  key: string;
  archived: boolean;
  status: string;
}
interface PlanEntry {
  sessionId: string;
  key: string;
  action: string;
  reason?: string;
}

describe('archive upload: settings of the current run', () => {
  it('an encrypted run is not forgotten by the next plain run: sessions stay archived, a plain upload skips them and says why', async () => {
    const env = await archiveEnv('settings');
    await makeSessions(env.root, [
      { year: 2022, id: 'S1', bigBytes: 100_000 },
      { year: 2022, id: 'S2', bigBytes: 100_000 },
      { year: 2023, id: 'S3', bigBytes: 100_000 },
      { year: 2023, id: 'S4', bigBytes: 100_000 },
    ]);
    const id = await generateAgeIdentity();
    const enc = ['--catalog', 'enc.db'];
    const up = await env.cli([...enc, 'upload', '--recipient', id.recipient]);
    assert.equal(up.code, 0, up.stdout + up.stderr);

    const listed = JSON.parse((await env.json([...enc, 'list-sessions'])).stdout) as Listing[];
    assert.deepEqual(
      listed.map((s) => [s.sessionId, s.archived, s.status, s.key]),
      [
        ['S1', true, 'done', 'backups/raw/2022/S1.tar.age'],
        ['S2', true, 'done', 'backups/raw/2022/S2.tar.age'],
        ['S3', true, 'done', 'backups/raw/2023/S3.tar.age'],
        ['S4', true, 'done', 'backups/raw/2023/S4.tar.age'],
      ],
    );
    assert.deepEqual(JSON.parse((await env.json([...enc, 'list-sessions', '--not-backed-up'])).stdout), []);

    const dry = JSON.parse((await env.json([...enc, 'upload', '--dry-run'])).stdout) as PlanEntry[];
    assert.deepEqual(dry.map((p) => p.action), ['skip', 'skip', 'skip', 'skip']);
    assert.match(dry[0]!.reason!, /archived as backups\/raw\/2022\/S1\.tar\.age.*encrypted.*--no-skip-existing/);

    const plain = await env.cli([...enc, 'upload']);
    assert.equal(plain.code, 0, plain.stdout + plain.stderr);
    assert.match(plain.stderr, /upload finished: 0 ok, 4 skipped, 0 failed/);
    const keys: string[] = [];
    for await (const e of env.storage.list({ prefix: 'backups/' })) if (e.type === 'object') keys.push(e.key);
    assert.deepEqual(keys.filter((k) => !k.endsWith('.manifest.json')).sort(), ['backups/raw/2022/S1.tar.age', 'backups/raw/2022/S2.tar.age', 'backups/raw/2023/S3.tar.age', 'backups/raw/2023/S4.tar.age']);

    // Asked for: uploaded again under the current settings, saying so.
    const again = JSON.parse((await env.json([...enc, 'upload', '--dry-run', '--no-skip-existing', '--session-id', 'S1'])).stdout) as PlanEntry[];
    assert.deepEqual(again.map((p) => [p.action, p.key]), [['upload', 'backups/raw/2022/S1.tar']]);
    assert.match(again[0]!.reason!, /archived as backups\/raw\/2022\/S1\.tar\.age.*again.*not encrypted/);
    const reupload = await env.json([...enc, 'upload', '--no-skip-existing', '--session-id', 'S1']);
    assert.equal(reupload.code, 0, reupload.stdout + reupload.stderr);
    assert.ok(jsonEvents(reupload.stdout).some((e) => e.type === 'notice' && /S1.*again/.test(String(e.message))));
    const after = JSON.parse((await env.json([...enc, 'list-sessions'])).stdout) as Listing[];
    assert.equal(after.find((s) => s.sessionId === 'S1')!.key, 'backups/raw/2022/S1.tar', 'the newest archive of the session');
  });

  it('a run that fails at its multipart-abort step is recorded as failed with its reason, not as interrupted', async () => {
    const env = await archiveEnv('abortstep');
    await makeSessions(env.root, [{ year: 2024, id: 'X1', bigBytes: 50_000 }]);
    // What a killed run leaves: a row that is not done, with its multipart upload id.
    const catalog = openCatalog(env.config.catalogPath);
    const key = 'backups/raw/2024/X1.tar';
    const row = catalog.beginArchive({ sessionId: 'X1', year: 2024, key, manifestKey: `${key}.manifest.json`, destination: env.storage.url, compression: 'none', encrypted: false, storageClass: 'STANDARD' });
    catalog.setUploadId(row.id, 'upload-of-a-killed-run');
    catalog.close();
    // Credentials that may do everything but list and abort multipart uploads.
    const user = createRgwUser();
    await allowAllBut(env.bucket, user, ['s3:ListBucketMultipartUploads', 's3:AbortMultipartUpload']);

    const r = await env.cli(['upload'], { AWS_ACCESS_KEY_ID: user.accessKeyId, AWS_SECRET_ACCESS_KEY: user.secretAccessKey });
    assert.equal(r.code, 4, r.stdout + r.stderr);
    const after = openCatalog(env.config.catalogPath);
    after.markStaleOperations(); // what the next run does first
    const [op] = after.recentOperations(1, 'upload');
    assert.equal(op?.status, 'failed', JSON.stringify(op));
    assert.match(op.error ?? '', /abandoned multipart upload/);
    assert.match(op.error ?? '', /denied|AccessDenied/i);
    after.close();
  });
});
