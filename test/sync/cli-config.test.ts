// `offsite sync` configured as the issue asks: the backend from OFFSITE_SYNC_* variables or a
// config file, the S3 secret key only from the environment (never written anywhere), and
// `sync migrate --to` moving a device between backends from the command line.
import assert from 'node:assert/strict';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { runCli } from '../support/cli.js';
import { createTestBucket, s3ChildEnv } from '../support/env.js';
import { closeSyncServers, HTTP_TOKEN, historyEntries, ids, localTarget, scratchDir, startSyncServer, stateDir } from './helpers.js';

after(closeSyncServers);

const jsonl = (entries: object[]) => entries.map((e) => JSON.stringify(e)).join('\n') + '\n';

/** Every file under `dir`, as text: to prove a secret was written nowhere. */
async function allText(dir: string): Promise<string> {
  let out = '';
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out += (await readFile(path.join(e.parentPath, e.name))).toString('latin1');
  }
  return out;
}

describe('offsite sync configuration and migration from the command line', () => {
  it('takes the bucket from OFFSITE_SYNC_* and a config file; the secret key comes from the environment only', async () => {
    const rgw = s3ChildEnv();
    const endpoint = process.env.OFFSITE_TEST_S3_ENDPOINT!;
    const bucket = await createTestBucket('sync-cfg');
    const home = await scratchDir('cfg-home-');
    const dirA = path.join(home, 'a');
    // No AWS_* variables: only the OFFSITE_SYNC_* ones name the bucket and the keys.
    const noAws = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_PROFILE: '', AWS_REGION: '', HOME: home, XDG_CONFIG_HOME: path.join(home, 'config') };
    const envA = {
      ...noAws,
      OFFSITE_SYNC_BACKEND: 's3',
      OFFSITE_SYNC_BUCKET: bucket,
      OFFSITE_SYNC_PREFIX: 'history/alice',
      OFFSITE_SYNC_REGION: 'us-east-1',
      OFFSITE_SYNC_ENDPOINT: endpoint,
      OFFSITE_SYNC_ACCESS_KEY_ID: rgw.AWS_ACCESS_KEY_ID!,
      OFFSITE_SYNC_SECRET_ACCESS_KEY: rgw.AWS_SECRET_ACCESS_KEY!,
      OFFSITE_SYNC_DIR: dirA,
    };
    const init = await runCli(['--json', 'sync', 'init', '--name', 'desk'], { env: envA });
    assert.equal(init.code, 0, `init with the bucket from OFFSITE_SYNC_*: ${init.stderr}`);
    const { secret } = JSON.parse(init.stdout) as { secret: string };
    const push = await runCli(['sync', 'push'], { env: envA, input: jsonl(historyEntries('desk', 4)) });
    assert.equal(push.code, 0, `push: ${push.stderr}`);

    // The second device: the same settings from a config file, the secret key from the environment.
    const dirB = path.join(home, 'b');
    const fileText = `[sync]\nbackend = "s3"\nbucket = "${bucket}"\nprefix = "history/alice"\nregion = "us-east-1"\nendpoint = "${endpoint}"\naccess_key_id = "${rgw.AWS_ACCESS_KEY_ID}"\nstate_dir = "${dirB}"\n`;
    await writeFile(path.join(home, 'sync.toml'), fileText);
    const envB = { ...noAws, OFFSITE_SYNC_CONFIG: path.join(home, 'sync.toml'), OFFSITE_SYNC_SECRET_ACCESS_KEY: rgw.AWS_SECRET_ACCESS_KEY! };
    const join = await runCli(['--json', 'sync', 'join', '-'], { env: envB, input: `${secret}\n` });
    assert.equal(join.code, 0, `join with the config file: ${join.stderr}`);
    assert.equal((JSON.parse(join.stdout) as { entries: number }).entries, 4, 'the second device has the first one’s entries');
    const status = await runCli(['--json', 'sync', 'status'], { env: envB });
    assert.equal(status.code, 0, status.stderr);
    assert.match((JSON.parse(status.stdout) as { storage: string }).storage, new RegExp(`^s3://${bucket}/history/alice\\?`), 'the prefix is part of the saved URL');

    const withoutSecret = await runCli(['sync', 'pull'], { env: { ...envB, OFFSITE_SYNC_SECRET_ACCESS_KEY: '' } });
    assert.equal(withoutSecret.code, 2, `a key id without its secret is a usage error: ${withoutSecret.stderr}`);
    assert.match(withoutSecret.stderr, /OFFSITE_SYNC_SECRET_ACCESS_KEY/, 'it says where the secret key goes');

    await writeFile(path.join(home, 'bad.toml'), `${fileText}secret_access_key = "${rgw.AWS_SECRET_ACCESS_KEY}"\n`);
    const refused = await runCli(['sync', 'pull'], { env: { ...envB, OFFSITE_SYNC_CONFIG: path.join(home, 'bad.toml') } });
    assert.equal(refused.code, 2, `a secret key in the config file is refused: ${refused.stderr}`);
    assert.ok(!refused.stderr.includes(rgw.AWS_SECRET_ACCESS_KEY!), 'the refused secret is not echoed');

    const everything = (await allText(dirA)) + (await allText(dirB));
    assert.ok(!everything.includes(rgw.AWS_SECRET_ACCESS_KEY!), 'the secret access key was written to no state file');
  });

  it('sync migrate --to moves a device from a directory to a server and the token is kept 0600', async () => {
    const from = await localTarget.newBucket('cli-migrate');
    const dir = await stateDir();
    const env = { OFFSITE_SYNC_DIR: dir, OFFSITE_SYNC_URL: '', OFFSITE_SYNC_TOKEN: '' };
    assert.equal((await runCli(['sync', '--storage', from, 'init'], { env })).code, 0, 'init');
    assert.equal((await runCli(['sync', 'push'], { env, input: jsonl(historyEntries('m', 7)) })).code, 0, 'push');
    assert.equal((await runCli(['sync', 'delete', 'm-3'], { env })).code, 0, 'delete');
    const server = await startSyncServer(await localTarget.newBucket('cli-migrate-to'));

    const noToken = await runCli(['sync', 'migrate', '--to', server], { env });
    assert.equal(noToken.code, 4, `a server without its token: exit 4 (${noToken.stderr})`);
    const moved = await runCli(['sync', 'migrate', '--to', server], { env: { ...env, OFFSITE_SYNC_TOKEN: HTTP_TOKEN } });
    assert.equal(moved.code, 0, `migrate: ${moved.stderr}`);
    assert.match(moved.stderr, /copied to http:\/\/127\.0\.0\.1:\d+: 1 entry batches, 1 deletion batches, 1 device\(s\)/, 'the summary counts what was copied');
    assert.ok(!moved.stderr.includes(HTTP_TOKEN) && !moved.stdout.includes(HTTP_TOKEN), 'the token is never printed');

    // Later commands run without the token in the environment (a shell hook): it was kept.
    const again = await runCli(['sync', 'push'], { env, input: jsonl(historyEntries('m', 2, 100)) });
    assert.equal(again.code, 0, `push to the server with the kept token: ${again.stderr}`);
    const other = await stateDir();
    const secretText = (await readFile(path.join(dir, 'secret'), 'utf8')).trim();
    const join = await runCli(['--json', 'sync', '--storage', server, 'join', '-'], { env: { OFFSITE_SYNC_DIR: other, OFFSITE_SYNC_TOKEN: HTTP_TOKEN }, input: `${secretText}\n` });
    assert.equal(join.code, 0, `join the server: ${join.stderr}`);
    const list = await runCli(['sync', 'list'], { env: { OFFSITE_SYNC_DIR: other } });
    const listed = list.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string });
    const expected = [...historyEntries('m', 7).filter((e) => e.id !== 'm-3'), ...historyEntries('m', 2, 100)];
    assert.deepEqual(ids(listed), ids(expected), 'every entry and the deletion arrived through the server');
    const tokenFile = path.join(dir, 'server-token');
    assert.equal((await readFile(tokenFile, 'utf8')).trim(), HTTP_TOKEN, 'the token is kept in the state directory');
    assert.equal((await stat(tokenFile)).mode & 0o777, 0o600, 'and only its owner can read it');
  });
});
