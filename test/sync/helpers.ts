// Shared by the sync tests: the three places every test runs against (a local directory, the
// real Ceph RGW of this run, and an `offsite serve` server over that RGW), shell-history
// entries, devices, and raw access to what is stored.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { openStorage, type RequestStats, type Storage } from '../../src/storage/index.js';
import { createSyncServer } from '../../src/server/index.js';
import { BucketBackend, HttpBackend, SyncClient, type SyncBackend, type SyncClientOptions, type SyncEntry } from '../../src/sync/index.js';
import { createTestBucket, s3ChildEnv, s3Url, tempDir } from '../support/env.js';

export interface SyncTarget {
  name: string;
  /** A storage URL with nothing in it. */
  newBucket(label: string): Promise<string>;
  /** What a child process needs in its environment to reach it. */
  childEnv(): Record<string, string>;
  /** Every stored object, raw, including the local adapter's sidecar files. */
  allObjects(url: string): Promise<{ name: string; body: Buffer }[]>;
  /** The Storage the data ends up in (for a server: the server's own), to read or change it raw. */
  openRaw(url: string): Storage;
  /** A SyncBackend on `url` of the kind the clients use (the caller closes it). */
  openBackend(url: string): SyncBackend;
  /** The request a pull that finds nothing new makes: a LIST of the bucket, or one query to the server. */
  queryOperation: string;
  /** For a server: the request counters of the storage behind it. */
  serverStats?(url: string): RequestStats;
}

let base: Promise<string> | undefined;
/** A new directory under one temp directory per test process (removed when the process exits). */
export async function scratchDir(label: string): Promise<string> {
  base ??= tempDir('offsite-sync-test-');
  return mkdtemp(path.join(await base, label));
}

export const localTarget: SyncTarget = {
  name: 'a local directory',
  newBucket: async (label) => path.join(await scratchDir(`${label}-`), 'bucket'),
  childEnv: () => ({}),
  openRaw: (url) => openStorage(url),
  openBackend: (url) => new BucketBackend(openStorage(url)),
  queryOperation: 'ListObjectsV2',
  allObjects: async (url) => {
    const out: { name: string; body: Buffer }[] = [];
    for (const e of await readdir(url, { recursive: true, withFileTypes: true })) {
      if (!e.isFile()) continue;
      const file = path.join(e.parentPath, e.name);
      out.push({ name: path.relative(url, file), body: await readFile(file) });
    }
    return out;
  },
};

export const rgwTarget: SyncTarget = {
  name: 'Ceph RGW',
  newBucket: async (label) => {
    // openStorage(url) takes credentials from the AWS default chain, as a user's would.
    Object.assign(process.env, s3ChildEnv());
    return s3Url(await createTestBucket(label));
  },
  childEnv: s3ChildEnv,
  openRaw: (url) => openStorage(url),
  openBackend: (url) => new BucketBackend(openStorage(url)),
  queryOperation: 'ListObjectsV2',
  allObjects: async (url) => {
    const storage = openStorage(url);
    try {
      const out: { name: string; body: Buffer }[] = [];
      for await (const item of storage.list()) {
        if (item.type !== 'object') continue;
        out.push({ name: item.key, body: await readObject(storage, item.key) });
      }
      return out;
    } finally {
      await storage.close();
    }
  },
};

/** The token the test servers require; given to clients through the environment, as a user would. */
export const HTTP_TOKEN = randomBytes(32).toString('base64url');

interface TestServer {
  storageUrl: string;
  storage: Storage;
  close(): Promise<void>;
}
const servers = new Map<string, TestServer>();

function serverOf(url: string): TestServer {
  const s = servers.get(url);
  if (!s) throw new Error(`${url} is not a sync server this test process started`);
  return s;
}

/**
 * Closes every sync server this test process started: each test file that starts one calls
 * after(closeSyncServers). (Not registered here: device-child.ts imports this module too, and a
 * node:test hook in a plain process would print a test report onto its stdout.)
 */
export async function closeSyncServers(): Promise<void> {
  const all = [...servers.values()];
  servers.clear();
  await Promise.all(all.map((s) => s.close()));
}

/** Starts createSyncServer over `storageUrl` on 127.0.0.1 (a free port); returns its http:// URL. */
export async function startSyncServer(storageUrl: string, token = HTTP_TOKEN): Promise<string> {
  const storage = openStorage(storageUrl);
  const app = await createSyncServer({ storage, token });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const url = `http://127.0.0.1:${port}`;
  servers.set(url, {
    storageUrl,
    storage,
    close: async () => {
      await app.close();
      await storage.close();
    },
  });
  return url;
}

export const httpTarget: SyncTarget = {
  name: 'an offsite serve server over Ceph RGW',
  newBucket: async (label) => {
    const url = await startSyncServer(await rgwTarget.newBucket(label));
    process.env.OFFSITE_SYNC_TOKEN = HTTP_TOKEN;
    return url;
  },
  childEnv: () => ({ OFFSITE_SYNC_TOKEN: HTTP_TOKEN }),
  allObjects: (url) => rgwTarget.allObjects(serverOf(url).storageUrl),
  openRaw: (url) => openStorage(serverOf(url).storageUrl),
  openBackend: (url) => new HttpBackend(url, { token: HTTP_TOKEN }),
  queryOperation: 'query',
  serverStats: (url) => serverOf(url).storage.stats(),
};

export const TARGETS: readonly SyncTarget[] = [localTarget, rgwTarget, httpTarget];

export async function readObject(storage: Storage, key: string): Promise<Buffer> {
  const { body } = await storage.get(key);
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A shell-history entry as the seed records it; the command names the device and number. */
export function historyEntry(device: string, i: number, marker = 'cmd'): SyncEntry {
  const start = Date.UTC(2026, 0, 1) + i * 1000;
  return {
    id: `${device}-${i}`,
    command: `${marker} --device ${device} --n ${i}`,
    cwd: `/home/user/projects/${device}`,
    exitCode: i % 7 === 0 ? 1 : 0,
    startTime: new Date(start).toISOString(),
    endTime: new Date(start + 250).toISOString(),
    host: `host-${device}`,
  };
}

export function historyEntries(device: string, count: number, from = 0, marker?: string): SyncEntry[] {
  return Array.from({ length: count }, (_, i) => historyEntry(device, from + i, marker));
}

/** A fresh state directory for one device. */
export async function stateDir(): Promise<string> {
  return path.join(await scratchDir('device-'), 'state');
}

export async function initDevice(url: string, opts: Partial<SyncClientOptions> = {}): Promise<{ client: SyncClient; secret: string }> {
  const { client, secret } = await SyncClient.init({ stateDir: await stateDir(), storageUrl: url, ...opts });
  return { client, secret };
}

export async function joinDevice(url: string, secret: string, opts: Partial<SyncClientOptions> = {}): Promise<SyncClient> {
  return (await SyncClient.join(secret, { stateDir: await stateDir(), storageUrl: url, ...opts })).client;
}

export function ids(entries: readonly { id: string }[]): string[] {
  return entries.map((e) => e.id).sort();
}

/** Every object of one account in `storage`, with the SHA-256 of its body (to show nothing changed). */
export async function accountObjects(storage: Storage, userId: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const item of storage.list({ prefix: `users/${userId}/` })) {
    if (item.type === 'object') out.set(item.key, createHash('sha256').update(await readObject(storage, item.key)).digest('hex'));
  }
  return out;
}

/** One digest of a set of entries, whatever their order. */
export function entriesDigest(entries: readonly object[]): string {
  return createHash('sha256')
    .update(JSON.stringify([...entries].map((e) => JSON.stringify(e)).sort()))
    .digest('hex');
}
