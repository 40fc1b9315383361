// Where the sync account lives: the config file and OFFSITE_SYNC_* variables, and the rule that
// secrets (the S3 secret access key, the server token) never come from a file.
import assert from 'node:assert/strict';
import { lstat, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isSyncError, mergeSyncConfigs, readServerToken, readSyncConfigFile, resolveSyncBackend, saveServerToken, syncConfigFromEnv } from '../../src/sync/index.js';
import { scratchDir } from './helpers.js';

async function configFile(text: string): Promise<string> {
  const dir = await scratchDir('config-');
  const file = path.join(dir, 'sync.toml');
  await writeFile(file, text);
  return file;
}

function throwsConfig(fn: () => unknown, pattern: RegExp, secretNotShown?: string): void {
  assert.throws(
    fn,
    (e: unknown) => {
      assert.ok(isSyncError(e, 'InvalidSyncConfig'), `expected InvalidSyncConfig, got ${String(e)}`);
      assert.match(e.message, pattern, 'the message says what is wrong');
      if (secretNotShown !== undefined) assert.ok(!e.message.includes(secretNotShown), 'the secret is not in the message');
      return true;
    },
    'it is refused',
  );
}

describe('sync configuration', () => {
  it('builds an s3 URL from the file, and the environment wins field by field', async () => {
    const file = await configFile('[sync]\nbackend = "s3"\nbucket = "team-history"\nprefix = "sync/alice"\nregion = "eu-west-1"\nendpoint = "http://127.0.0.1:9000"\naccess_key_id = "AKIAFILE"\n');
    const { config } = readSyncConfigFile(file, {});
    const env = { OFFSITE_SYNC_REGION: 'us-east-2', OFFSITE_SYNC_SECRET_ACCESS_KEY: 'very-secret-key' };
    const resolved = resolveSyncBackend(mergeSyncConfigs(config, syncConfigFromEnv(env)), env);
    assert.equal(resolved?.kind, 's3', 'an s3 backend');
    assert.equal(resolved?.url, 's3://team-history/sync/alice?region=us-east-2&endpoint=http%3A%2F%2F127.0.0.1%3A9000', 'the URL from the parts, region from the environment');
    assert.deepEqual(resolved?.credentials, { accessKeyId: 'AKIAFILE', secretAccessKey: 'very-secret-key' }, 'the key id from the file, the secret from the environment');
    assert.ok(!resolved.url.includes('very-secret-key'), 'the secret is not in the URL');
  });

  it('takes a whole URL from OFFSITE_SYNC_URL over the parts in the file', async () => {
    const file = await configFile('bucket = "from-file"\n');
    const env = { OFFSITE_SYNC_URL: 'http://127.0.0.1:8787', OFFSITE_SYNC_TOKEN: 'tok-123' };
    const resolved = resolveSyncBackend(mergeSyncConfigs(readSyncConfigFile(file, {}).config, syncConfigFromEnv(env)), env);
    assert.deepEqual(resolved, { kind: 'http', url: 'http://127.0.0.1:8787', token: 'tok-123' }, 'the http backend and its token from the environment');
    const local = resolveSyncBackend(syncConfigFromEnv({ OFFSITE_SYNC_BACKEND: 'local', OFFSITE_SYNC_PATH: 'rel/bucket' }), {});
    assert.equal(local?.url, path.resolve('rel/bucket'), 'a local directory, made absolute');
    assert.equal(resolveSyncBackend({}, {}), undefined, 'no backend configured: the one saved in the state is used');
  });

  it('refuses secrets in the file, unknown keys, incomplete and contradictory settings', async () => {
    throwsConfig(() => readSyncConfigFile(undefined, { OFFSITE_SYNC_CONFIG: '/nonexistent/sync.toml' }), /cannot read the sync config file/);
    const withSecret = await configFile('bucket = "b"\nsecret_access_key = "wJalrXUtnFEMI-in-a-file"\n');
    throwsConfig(() => readSyncConfigFile(withSecret, {}), /never goes into a file.*OFFSITE_SYNC_SECRET_ACCESS_KEY/, 'wJalrXUtnFEMI-in-a-file');
    const withToken = await configFile('url = "http://h:1"\ntoken = "server-token-value"\n');
    throwsConfig(() => readSyncConfigFile(withToken, {}), /OFFSITE_SYNC_TOKEN/, 'server-token-value');
    const typo = await configFile('bucket = "b"\nregoin = "x"\n');
    throwsConfig(() => readSyncConfigFile(typo, {}), /regoin.*known keys/);
    const broken = await configFile('bucket = [\n');
    throwsConfig(() => readSyncConfigFile(broken, {}), /not valid TOML/);
    throwsConfig(() => resolveSyncBackend({ backend: 's3' }, {}), /needs a bucket.*OFFSITE_SYNC_BUCKET/);
    throwsConfig(() => resolveSyncBackend({ backend: 'http' }, {}), /needs the server's URL/);
    throwsConfig(() => resolveSyncBackend({ region: 'eu-west-1' }, {}), /without a bucket/);
    throwsConfig(() => resolveSyncBackend({ bucket: 'my-bucket', accessKeyId: 'AKIA1' }, {}), /no secret access key/);
    throwsConfig(() => resolveSyncBackend({ backend: 's3', url: 'http://h:1' }, {}), /does not match the URL/);
    throwsConfig(() => syncConfigFromEnv({ OFFSITE_SYNC_BACKEND: 'ftp' }), /use s3, http or local/);
  });

  it('keeps a server token in a 0600 file of the state directory', async () => {
    const dir = path.join(await scratchDir('token-'), 'state');
    await mkdir(dir, { mode: 0o700 });
    assert.equal(readServerToken(dir), undefined, 'none yet');
    await saveServerToken(dir, 'tok-456');
    assert.equal(readServerToken(dir), 'tok-456', 'read back');
    assert.equal((await stat(path.join(dir, 'server-token'))).mode & 0o777, 0o600, 'owner-only');
  });

  it('never writes or reads the server token through a symlink planted at its name', async () => {
    const root = await scratchDir('token-link-');
    const dir = path.join(root, 'state');
    await mkdir(dir, { mode: 0o777 });
    // Another user, while the directory was open to everyone, linked the token's name to a file of theirs.
    const victim = path.join(root, 'attacker-readable.txt');
    await writeFile(victim, 'nothing yet\n', { mode: 0o644 });
    await symlink(victim, path.join(dir, 'server-token'));
    assert.equal(readServerToken(dir), undefined, 'a link is not read');
    await saveServerToken(dir, 'tok-secret-789');
    assert.equal(await readFile(victim, 'utf8'), 'nothing yet\n', 'the linked file is untouched');
    const st = await lstat(path.join(dir, 'server-token'));
    assert.ok(st.isFile() && !st.isSymbolicLink(), 'the link was replaced by a regular file');
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(readServerToken(dir), 'tok-secret-789');
  });
});

