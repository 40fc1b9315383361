/**
 * `offsite doctor`: the "test connection" of a storage URL. Each check passes, warns or fails
 * with a reason a person can act on; checks that depend on a failed one are skipped, saying why.
 * The probe writes, reads, lists and deletes one temporary object under `.offsite-doctor/`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { isStorageError, LocalStorage, openStorage, S3Sdk, S3Storage, type RequestStats, type Storage } from '../storage/index.js';

export type CheckStatus = 'pass' | 'warn' | 'fail' | 'skip';

export interface DoctorCheck {
  /** Stable identifier: "credentials", "bucket", "write", ... */
  id: string;
  title: string;
  status: CheckStatus;
  /** What was found, or why it failed and what to do. */
  detail: string;
}

export interface DoctorReport {
  url: string;
  /** False when any check failed (warnings do not fail). */
  ok: boolean;
  checks: DoctorCheck[];
  /** Requests the checks made. */
  stats: RequestStats;
}

export interface DoctorOptions {
  /** A storage instance to check instead of opening `url` (it is not closed). */
  storage?: Storage;
}

const PROBE_PREFIX = '.offsite-doctor/';

export async function runDoctor(url: string, opts: DoctorOptions = {}): Promise<DoctorReport> {
  const storage = opts.storage ?? openStorage(url);
  const checks = new Checks();
  const add = checks.set;
  try {
    add('url', 'storage URL', 'pass', describeStorage(storage));
    const reachable = await checkAccess(storage, add);
    if (reachable) {
      await probeReadWrite(storage, checks);
    } else {
      for (const [id, title] of [
        ['write', 'put / get / list / delete probe'],
        ['conditional', 'conditional writes'],
      ] as const)
        add(id, title, 'skip', 'skipped: the store is not reachable');
    }
    await bucketSettings(storage, reachable, add);
  } finally {
    if (!opts.storage) await storage.close();
  }
  const list = checks.list();
  return { url, ok: list.every((c) => c.status !== 'fail'), checks: list, stats: storage.stats() };
}

function describeStorage(storage: Storage): string {
  if (storage instanceof S3Storage) {
    const endpoint = storage.client.config.endpoint ? 'custom endpoint' : 'AWS';
    return `${storage.url} (S3, ${endpoint})`;
  }
  return `${storage.url} (local directory)`;
}

type Add = (id: string, title: string, status: CheckStatus, detail: string) => void;

/** Results by id, in first-report order; a later report for an id replaces the earlier one. */
class Checks {
  private readonly byId = new Map<string, DoctorCheck>();
  readonly set: Add = (id, title, status, detail) => void this.byId.set(id, { id, title, status, detail });
  has(id: string): boolean {
    return this.byId.has(id);
  }
  list(): DoctorCheck[] {
    return [...this.byId.values()];
  }
}

/** Credentials and bucket: one HEAD of a key that does not exist (NotFound = reachable). */
async function checkAccess(storage: Storage, add: Add): Promise<boolean> {
  if (storage instanceof S3Storage) {
    try {
      await storage.client.config.credentials();
      add('credentials', 'credentials', 'pass', `found in ${storage.credentialSource()}`);
    } catch (e) {
      add('credentials', 'credentials', 'fail', `none found (${(e as Error).message.split('\n')[0]}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run on a host with an instance role`);
      add('bucket', 'bucket reachable', 'skip', 'skipped: no credentials');
      return false;
    }
  } else {
    add('credentials', 'credentials', 'pass', 'not needed for a local directory');
  }
  try {
    await storage.head(`${PROBE_PREFIX}absent-${randomBytes(6).toString('hex')}`);
    add('bucket', 'bucket reachable', 'pass', 'reachable');
    return true;
  } catch (e) {
    if (isStorageError(e, 'NotFound')) {
      add('bucket', 'bucket reachable', 'pass', storage instanceof LocalStorage ? 'directory usable' : 'reachable, credentials accepted');
      return true;
    }
    const code = isStorageError(e) ? e.code : 'Error';
    if (code === 'InvalidCredentials') {
      // Credentials were found, but the server refused them: that is the check that failed.
      add('credentials', 'credentials', 'fail', (e as Error).message);
      add('bucket', 'bucket reachable', 'skip', 'skipped: the credentials were refused');
    } else {
      add('bucket', 'bucket reachable', 'fail', (e as Error).message);
    }
    return false;
  }
}

async function probeReadWrite(storage: Storage, checks: Checks): Promise<void> {
  const add = checks.set;
  const key = `${PROBE_PREFIX}probe-${Date.now()}-${randomBytes(6).toString('hex')}`;
  const body = randomBytes(4096);
  const steps: string[] = [];
  let written = false;
  try {
    const put = await storage.put(key, body, { contentType: 'application/octet-stream' });
    written = true;
    steps.push('put');
    const got = await storage.get(key);
    const chunks: Buffer[] = [];
    for await (const c of got.body as AsyncIterable<Buffer>) chunks.push(c);
    const back = Buffer.concat(chunks);
    if (sha256(back) !== sha256(body)) throw new Error(`read back ${back.length} bytes that differ from the ${body.length} written`);
    steps.push('get');
    let listed = false;
    for await (const e of storage.list({ prefix: PROBE_PREFIX })) if (e.type === 'object' && e.key === key) listed = true;
    if (!listed) throw new Error('the probe object is missing from the listing');
    steps.push('list');

    // Reported after the probe line (see below), but run while the probe object exists.
    const conditional = await conditionalWrites(storage, key, put.etag);

    await storage.delete(key);
    written = false;
    try {
      await storage.head(key);
      throw new Error('the probe object is still there after delete');
    } catch (e) {
      if (!isStorageError(e, 'NotFound')) throw e;
    }
    steps.push('delete');
    add('write', 'put / get / list / delete probe', 'pass', `${steps.join(', ')} of ${body.length} bytes at ${PROBE_PREFIX}, content checked by SHA-256`);
    add('conditional', 'conditional writes', conditional.status, conditional.detail);
  } catch (e) {
    const done = steps.length ? ` (${steps.join(', ')} worked)` : '';
    add('write', 'put / get / list / delete probe', 'fail', `${(e as Error).message}${done}`);
    if (!checks.has('conditional')) add('conditional', 'conditional writes', 'skip', 'skipped: the probe failed');
  } finally {
    if (written) await storage.delete(key).catch(() => undefined);
  }
}

/** Sync and locking rely on If-None-Match / If-Match being enforced, not silently ignored. */
async function conditionalWrites(storage: Storage, key: string, etag: string): Promise<{ status: CheckStatus; detail: string }> {
  const refused = async (attempt: Promise<unknown>): Promise<boolean | Error> => {
    try {
      await attempt;
      return false;
    } catch (e) {
      if (isStorageError(e, 'PreconditionFailed')) return true;
      return e as Error;
    }
  };
  const createOverExisting = await refused(storage.put(key, 'x', { ifNoneMatch: '*' }));
  const staleReplace = await refused(storage.put(key, 'x', { ifMatch: etag === '0'.repeat(32) ? '1'.repeat(32) : '0'.repeat(32) }));
  for (const r of [createOverExisting, staleReplace]) if (r instanceof Error) throw r;
  if (createOverExisting && staleReplace) {
    return { status: 'pass', detail: 'If-None-Match: * and If-Match are enforced' };
  } else {
    const ignored = [!createOverExisting && 'If-None-Match: *', !staleReplace && 'If-Match'].filter(Boolean).join(' and ');
    return { status: 'fail', detail: `${ignored} ignored by this server: a conditional write replaced an object; sync and locks need a server that enforces them (AWS S3, Ceph >= 18 or MinIO)` };
  }
}

async function bucketSettings(storage: Storage, reachable: boolean, add: Add): Promise<void> {
  const settings = [
    ['versioning', 'versioning'],
    ['object-lock', 'object lock'],
    ['lifecycle', 'lifecycle rules'],
  ] as const;
  if (!(storage instanceof S3Storage)) {
    for (const [id, title] of settings) add(id, title, 'skip', 'not applicable to a local directory');
    return;
  }
  if (!reachable) {
    for (const [id, title] of settings) add(id, title, 'skip', 'skipped: the bucket is not reachable');
    return;
  }
  const { client, bucket } = storage;
  const denied = (e: unknown) => `cannot read it (${(e as Error).name}): the credentials may lack s3:Get* permission on the bucket`;
  try {
    const v = await client.send(new S3Sdk.GetBucketVersioningCommand({ Bucket: bucket }));
    add('versioning', 'versioning', 'pass', v.Status === 'Enabled' ? 'enabled: overwritten and deleted objects are kept as old versions (they are billed)' : v.Status === 'Suspended' ? 'suspended' : 'off');
  } catch (e) {
    add('versioning', 'versioning', 'warn', denied(e));
  }
  try {
    const l = await client.send(new S3Sdk.GetObjectLockConfigurationCommand({ Bucket: bucket }));
    const rule = l.ObjectLockConfiguration?.Rule?.DefaultRetention;
    add('object-lock', 'object lock', 'pass', l.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled' ? `enabled${rule ? ` (default ${rule.Mode} ${rule.Days ?? rule.Years} ${rule.Days ? 'days' : 'years'})` : ''}` : 'off');
  } catch (e) {
    const name = (e as Error).name;
    if (name === 'ObjectLockConfigurationNotFoundError' || name === 'ObjectLockConfigurationNotFound') add('object-lock', 'object lock', 'pass', 'off');
    else add('object-lock', 'object lock', 'warn', denied(e));
  }
  try {
    const lc = await client.send(new S3Sdk.GetBucketLifecycleConfigurationCommand({ Bucket: bucket }));
    const rules = lc.Rules ?? [];
    add('lifecycle', 'lifecycle rules', 'pass', rules.length ? `${rules.length} rule(s): ${rules.map((r) => `${r.ID ?? '(unnamed)'} ${r.Status}`).join(', ')}` : 'none');
  } catch (e) {
    if ((e as Error).name === 'NoSuchLifecycleConfiguration') add('lifecycle', 'lifecycle rules', 'pass', 'none');
    else add('lifecycle', 'lifecycle rules', 'warn', denied(e));
  }
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
