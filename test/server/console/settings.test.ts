// S3 settings over HTTP against the suite's RGW: saved with the secret write-only (GET shows
// that it is set and its last 4 characters, nothing more), kept when a PUT has none, the
// doctor's checks passing on RGW and naming the credentials when the secret is wrong. Then the
// secret is searched for in the raw bytes of everything the console wrote or said.
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createTestBucket, s3TestServer, tempDir } from '../../support/env.js';
import { startConsole, waitForRun, type ConsoleProcess } from './support.js';

describe('console S3 settings', () => {
  const rgw = s3TestServer();
  let bucket: string;
  let c: ConsoleProcess;
  const form = () => ({ endpoint: rgw.endpoint, bucket, region: 'us-east-1', access_key_id: rgw.accessKeyId, secret_access_key: rgw.secretAccessKey, prefix: 'console/settings', path_style: true });

  before(async () => {
    bucket = await createTestBucket('console-settings');
    const dir = await tempDir('offsite-console-settings-');
    const db = new Database(path.join(dir, 'app.db'));
    db.exec('CREATE TABLE t (x TEXT); INSERT INTO t VALUES (\'a\'), (\'b\');');
    db.close();
    await writeFile(path.join(dir, 'offsite.toml'), `[jobs.app]\nsource = "sqlite:${dir}/app.db"\nschedule = "86400"\nlocal_dir = "${dir}/backups/app"\n`);
    c = await startConsole({ dir });
  });
  after(async () => {
    await c.stop();
  });

  it('starts unconfigured', async () => {
    const r = await c.api('GET', '/api/settings/s3');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { configured: false, endpoint: null, bucket: null, region: null, access_key_id: null, prefix: null, path_style: null, secret_set: false, updated_at: null });
    const job = await c.api('GET', '/api/jobs/app');
    assert.equal(job.json.destination, null);
    assert.equal(job.json.destination_from, null);
  });

  it('PUT saves them; GET masks the secret (set, last 4 only)', async () => {
    const put = await c.api('PUT', '/api/settings/s3', form());
    assert.equal(put.status, 200, put.text);
    const got = await c.api('GET', '/api/settings/s3');
    assert.equal(got.json.configured, true);
    assert.equal(got.json.bucket, bucket);
    assert.equal(got.json.endpoint, rgw.endpoint);
    assert.equal(got.json.access_key_id, rgw.accessKeyId);
    assert.equal(got.json.prefix, 'console/settings');
    assert.equal(got.json.path_style, true);
    assert.equal(got.json.secret_set, true);
    assert.equal('secret_last4' in got.json, false, 'not even the last 4 characters');
    assert.ok(!('secret_access_key' in got.json));
    assert.match(got.json.updated_at, /^\d{4}-\d\d-\d\dT/);
    const job = await c.api('GET', '/api/jobs/app');
    assert.equal(job.json.destination_from, 'settings');
    assert.equal(job.json.destination, `s3://${bucket}/console/settings/app/?endpoint=${encodeURIComponent(rgw.endpoint)}&region=us-east-1&path_style=true`);
  });

  it('the stored settings pass every check of Test Connection against RGW', async () => {
    const r = await c.api('POST', '/api/settings/s3/test', {});
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.ok, true, JSON.stringify(r.json.checks));
    const byId = new Map<string, { status: string; detail: string }>(r.json.checks.map((k: { id: string; status: string; detail: string }) => [k.id, k]));
    for (const id of ['credentials', 'bucket', 'write', 'conditional', 'versioning', 'object-lock', 'lifecycle']) {
      assert.equal(byId.get(id)?.status, 'pass', `${id}: ${JSON.stringify(byId.get(id))}`);
    }
    assert.ok(r.json.checks.every((k: { status: string }) => k.status !== 'fail'));
    assert.ok(r.json.url.startsWith(`s3://${bucket}/console/settings/`));
  });

  it('the unsaved form with a wrong secret fails the credentials check, by name; without a secret it uses the stored one', async () => {
    const wrong = await c.api('POST', '/api/settings/s3/test', { ...form(), secret_access_key: `${rgw.secretAccessKey}-wrong` });
    assert.equal(wrong.status, 200, wrong.text);
    assert.equal(wrong.json.ok, false);
    const creds = wrong.json.checks.find((k: { id: string }) => k.id === 'credentials');
    assert.equal(creds.status, 'fail', JSON.stringify(wrong.json.checks));
    assert.equal(creds.title, 'credentials');
    assert.ok(wrong.json.checks.filter((k: { status: string }) => k.status === 'fail').every((k: { id: string }) => k.id === 'credentials'), 'only the credentials check fails; the rest are skipped');
    const { secret_access_key: _omitted, ...noSecret } = form();
    const stored = await c.api('POST', '/api/settings/s3/test', noSecret);
    assert.equal(stored.json.ok, true, JSON.stringify(stored.json.checks));
    const otherBucket = await c.api('POST', '/api/settings/s3/test', { ...noSecret, bucket: `${bucket}-missing` });
    assert.equal(otherBucket.json.ok, false);
    assert.equal(otherBucket.json.checks.find((k: { id: string }) => k.id === 'bucket').status, 'fail');
    // The failed tests changed nothing stored.
    assert.equal((await c.api('GET', '/api/settings/s3')).json.bucket, bucket);
  });

  it('a PUT without the secret keeps the stored one: a backup still uploads', async () => {
    const { secret_access_key: _omitted, ...noSecret } = form();
    const put = await c.api('PUT', '/api/settings/s3', { ...noSecret, prefix: 'console/kept', secret_access_key: '' });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.json.secret_set, true);
    assert.equal(put.json.prefix, 'console/kept');
    const started = await c.api('POST', '/api/jobs/app/backup', {});
    assert.equal(started.status, 202, started.text);
    const run = await waitForRun(c, started.json.run_id);
    assert.equal(run.json.status, 'ok', run.text);
    assert.equal(run.json.uploaded, true);
    const listed = await c.api('GET', '/api/jobs/app/backups');
    assert.equal(listed.json.backups[0].name, run.json.backup);
    assert.equal(listed.json.backups[0].where, 'both');
  });

  it('a bucket that refuses the listing is reported (bucket_error), and the local copies are still listed', async () => {
    const put = await c.api('PUT', '/api/settings/s3', { ...form(), prefix: 'console/kept', secret_access_key: `${rgw.secretAccessKey}-wrong` });
    assert.equal(put.status, 200);
    const listed = await c.api('GET', '/api/jobs/app/backups');
    assert.equal(listed.status, 200, listed.text);
    assert.equal(listed.json.bucket_error?.code, 'InvalidCredentials', listed.text);
    assert.ok(listed.json.backups.length >= 1);
    assert.ok(listed.json.backups.every((b: { where: string }) => b.where === 'local'));
    assert.equal((await c.api('PUT', '/api/settings/s3', { ...form(), prefix: 'console/kept' })).status, 200);
    const again = await c.api('GET', '/api/jobs/app/backups');
    assert.equal(again.json.bucket_error, null);
    assert.equal(again.json.backups[0].where, 'both');
  });

  it('DELETE removes them: GET says not configured, the job has no destination', async () => {
    const del = await c.api('DELETE', '/api/settings/s3');
    assert.equal(del.status, 200);
    assert.equal(del.json.configured, false);
    assert.equal((await c.api('GET', '/api/settings/s3')).json.secret_set, false);
    assert.equal((await c.api('GET', '/api/jobs/app')).json.destination, null);
    const none = await c.api('POST', '/api/settings/s3/test', {});
    assert.equal(none.status, 409);
    assert.equal(none.json.error.code, 'NotConfigured');
    // Saved again for the search below (the database has held it twice now).
    assert.equal((await c.api('PUT', '/api/settings/s3', form())).status, 200);
  });

  it('no byte of the secret in console.db (and its WAL), the catalog, the logs or any answer', async () => {
    const secret = Buffer.from(rgw.secretAccessKey);
    assert.ok(secret.length >= 8);
    const files = (await readdir(c.dataDir)).filter((f) => !f.endsWith('.key'));
    assert.ok(files.includes('console.db') && files.includes('catalog.db'), files.join(', '));
    for (const f of files) {
      const p = path.join(c.dataDir, f);
      const bytes = await readFile(p).catch(() => undefined);
      if (bytes) assert.equal(bytes.indexOf(secret), -1, `${f} holds the secret`);
      // Nor a tail of it (a "last 4" hint would be one).
      if (bytes) assert.equal(bytes.indexOf(secret.subarray(-6)), -1, `${f} holds the end of the secret`);
    }
    assert.equal(c.stdout().indexOf(rgw.secretAccessKey), -1, 'stdout');
    assert.equal(c.stderr().indexOf(rgw.secretAccessKey), -1, 'stderr');
    assert.ok(c.answers.length > 10);
    for (const a of c.answers) assert.equal(a.indexOf(rgw.secretAccessKey), -1, `an answer holds the secret: ${a.slice(0, 200)}`);
    // The search sees the answers at all.
    assert.ok(c.answers.some((a) => a.includes('"secret_set":true')));
  });
});
