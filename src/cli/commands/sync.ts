// offsite sync init | join | push | pull | delete | status | list | compact | uninstall:
// end-to-end-encrypted sync between devices through a bucket. A shell over src/sync: parses,
// calls the library, prints. The library is loaded when one of these runs.
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import type { RequestsUsed, SyncClient, SyncClientOptions } from '../../sync/index.js';
import { EXIT } from '../exit-codes.js';
import { note, printJson, printJsonLine, printLine, UsageError, type GlobalOptions } from '../output.js';
import { registerSyncHistoryCommands } from './sync-history.js';

export interface SyncCliOptions extends GlobalOptions {
  storage?: string;
  dir?: string;
  config?: string;
  name?: string;
}

const syncLib = () => import('../../sync/index.js');

export const SYNC_URL_ENV = 'OFFSITE_SYNC_URL';
export const SYNC_DIR_ENV = 'OFFSITE_SYNC_DIR';

/**
 * The client's options from, in increasing precedence: the config file (--config,
 * $OFFSITE_SYNC_CONFIG, else ~/.config/offsite/sync.toml if it exists), the OFFSITE_SYNC_*
 * variables, and --storage / --dir. With no backend named, a joined device uses the one saved
 * in its state.
 */
export async function clientOptions(g: SyncCliOptions): Promise<SyncClientOptions> {
  const { readSyncConfigFile, syncConfigFromEnv, mergeSyncConfigs, resolveSyncBackend, defaultSyncStateDir } = await syncLib();
  const config = mergeSyncConfigs(readSyncConfigFile(g.config).config, syncConfigFromEnv(), g.storage ? { url: g.storage } : {});
  const backend = resolveSyncBackend(config);
  return {
    stateDir: g.dir ? path.resolve(g.dir) : (config.stateDir ?? defaultSyncStateDir()),
    ...(backend ? { storageUrl: backend.url } : {}),
    ...(backend?.credentials ? { credentials: backend.credentials } : {}),
    ...(backend?.token ? { token: backend.token } : {}),
    ...(g.name ? { deviceName: g.name } : {}),
  };
}

export async function withClient<T>(g: SyncCliOptions, fn: (client: SyncClient) => Promise<T>): Promise<T> {
  const { SyncClient } = await syncLib();
  const client = await SyncClient.open(await clientOptions(g));
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

export function requestsText(r: RequestsUsed): string {
  const ops = Object.entries(r.byOperation).map(([op, n]) => `${op} ${n}`);
  return `${r.total} request${r.total === 1 ? '' : 's'}${ops.length > 0 ? ` (${ops.join(', ')})` : ''}`;
}

/** JSON lines from a file or stdin; blank lines are skipped. */
export async function readJsonLines(file: string): Promise<unknown[]> {
  const raw = file === '-' ? await text(process.stdin) : await readFile(file, 'utf8').catch(() => {
    throw new UsageError(`${file}: cannot read it (give a JSON-lines file, or - for standard input)`);
  });
  const out: unknown[] = [];
  for (const [i, line] of raw.split('\n').entries()) {
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      throw new UsageError(`${file === '-' ? 'stdin' : file} line ${i + 1} is not JSON (one JSON object per line, each with an "id")`);
    }
  }
  return out;
}

export function registerSyncCommands(program: Command): void {
  const group = program
    .command('sync')
    .description('end-to-end-encrypted sync of JSON records (e.g. shell history) between devices through a bucket')
    .option('--storage <url>', `the backend, for init and join: a directory, s3://bucket/prefix?region=…, or http(s)://host:port of "offsite serve" (default: $${SYNC_URL_ENV} or the config file); later commands use the one saved in the state`)
    .option('--dir <path>', `this device's state directory (default: $${SYNC_DIR_ENV}, state_dir in the config file, else $XDG_DATA_HOME/offsite/sync or ~/.local/share/offsite/sync)`)
    .option('--config <file>', 'sync config file (default: $OFFSITE_SYNC_CONFIG, else ~/.config/offsite/sync.toml if it exists)');
  group.addHelpText(
    'after',
    `
Examples:
  offsite sync --storage 's3://my-bucket/sync?region=eu-west-1' init      (prints the secret once)
  offsite sync --storage 's3://my-bucket/sync?region=eu-west-1' join -    (the secret on stdin)
  echo '{"id":"a1","command":"make test","cwd":"/src","exitCode":0}' | offsite sync push
  offsite sync pull
  offsite sync delete a1
  offsite sync migrate --to http://127.0.0.1:8787      (OFFSITE_SYNC_TOKEN: the server's token)

Configuration (flags > environment > config file):
  OFFSITE_SYNC_URL, or OFFSITE_SYNC_BACKEND=s3|http|local with OFFSITE_SYNC_BUCKET, _REGION,
  _ENDPOINT, _PREFIX, _ACCESS_KEY_ID (s3) or _PATH (local); OFFSITE_SYNC_DIR; the same keys in
  sync.toml (url, backend, bucket, region, endpoint, prefix, access_key_id, path, state_dir).
  Secrets only from the environment: OFFSITE_SYNC_SECRET_ACCESS_KEY (or the AWS credential
  chain) and OFFSITE_SYNC_TOKEN (kept 0600 in the state directory by init, join and migrate).

The secret is kept in the state directory (a 0600 file) and never uploaded; the bucket sees only
ciphertext. See docs/sync.md.`,
  );

  group
    .command('init')
    .description('create a sync account with a new secret and make this the first device (the secret is printed once)')
    .option('--name <name>', 'this device\'s name in "sync status" (default: the host name)')
    .action(async (_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<SyncCliOptions>();
      const { SyncClient } = await syncLib();
      const { client, secret, requests } = await SyncClient.init(await clientOptions(g));
      await client.close();
      if (g.json) {
        printJson({ secret, userId: client.userId, deviceId: client.deviceId, stateDir: client.stateDir, requests });
        return;
      }
      printLine('Your sync secret (shown once; save it somewhere safe: it adds devices and cannot be recovered):');
      printLine('');
      printLine(`    ${secret}`);
      printLine('');
      note(`device ${client.deviceId} registered; state in ${client.stateDir} (the secret is kept there, 0600); ${requestsText(requests)}`);
    });

  group
    .command('join')
    .description('add this device to an account: checks the secret, starts from the newest snapshot, reads the rest')
    .argument('<secret>', 'the secret "sync init" printed, or - to read it from stdin (keeps it out of the process list)')
    .option('--name <name>', 'this device\'s name in "sync status" (default: the host name)')
    .action(async (secretArg: string, _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<SyncCliOptions>();
      const secret = secretArg === '-' ? (await text(process.stdin)).trim() : secretArg;
      const { SyncClient } = await syncLib();
      const r = await SyncClient.join(secret, await clientOptions(g));
      await r.client.close();
      if (g.json) printJson({ deviceId: r.client.deviceId, entries: r.entries, seconds: r.seconds, problems: r.problems, requests: r.requests, stateDir: r.client.stateDir });
      else {
        printLine(`joined as device ${r.client.deviceId}: ${r.entries} entries in ${r.seconds.toFixed(2)} s, ${requestsText(r.requests)}`);
        for (const p of r.problems) note(`${p.code}: ${p.message}`);
      }
      // Joined, but from data the store withheld or damaged: as for pull, a script must notice.
      if (r.problems.length > 0) process.exitCode = EXIT.corrupted;
    });

  group
    .command('push')
    .description('add entries (JSON lines, one object with an "id" each) and send them')
    .argument('[file]', 'JSON-lines file, or - for standard input', '-')
    .option('--queue', 'only store them here; send when a batch is due (by count, size or age) or at the next pull')
    .action(async (file: string, o: { queue?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<SyncCliOptions>();
      const entries = await readJsonLines(file);
      const r = await withClient(g, (c) => c.push(entries, { flush: !o.queue }));
      if (g.json) printJson(r);
      else note(`${r.added} added${r.duplicates ? `, ${r.duplicates} already here` : ''}${r.alreadyDeleted ? `, ${r.alreadyDeleted} deleted before` : ''}; ${r.batches} batch(es) sent, ${r.pending} pending; ${requestsText(r.requests)}`);
    });

  group
    .command('pull')
    .description('receive what the other devices sent: new entries are printed as JSON lines')
    .action(async (_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<SyncCliOptions>();
      const r = await withClient(g, (c) => c.pull());
      if (g.json) printJson(r);
      else {
        for (const e of r.entries) printJsonLine(e);
        note(`${r.entries.length} new, ${r.deleted.length} deleted; ${requestsText(r.requests)}`);
        for (const p of r.problems) note(`${p.code}: ${p.message}`);
      }
      // Refused, forked or withheld batches: data a bucket owner changed, lost or holds back, or a device copied: a script must notice.
      if (r.problems.length > 0) process.exitCode = EXIT.corrupted;
    });

  group
    .command('delete')
    .description('delete entries by id on every device, including devices that join later')
    .argument('<ids...>', 'entry ids')
    .action(async (ids: string[], _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<SyncCliOptions>();
      const r = await withClient(g, (c) => c.delete(ids));
      if (g.json) printJson(r);
      else note(`deleted ${r.removed} here; the deletion request for ${ids.length} id(s) is sent to every device; ${requestsText(r.requests)}`);
    });

  group
    .command('status')
    .description('this device, every device of the account, last sync, pending entries, requests used')
    .action(async (_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<SyncCliOptions>();
      const s = await withClient(g, (c) => c.status());
      if (g.json) {
        printJson(s);
        return;
      }
      printLine(`device ${s.deviceId} (${s.deviceName}) of account ${s.userId} at ${s.storage} (${s.backend} backend)`);
      printLine(`entries: ${s.entries}; pending: ${s.pendingEntries} entries, ${s.pendingDeletions} deletions, ${s.unsentBatches} unsent batches`);
      printLine(`last push: ${s.lastPushAt ?? 'never'}; last pull: ${s.lastPullAt ?? 'never'}; snapshot generation: ${s.snapshotGeneration}; clock offset: ${s.clockOffsetMs} ms`);
      printLine(`requests used by this device: ${requestsText(s.requestsUsed)}`);
      printLine(`devices (${s.devices.length}):`);
      for (const d of s.devices) printLine(`  ${d.deviceId}  ${d.name ?? '?'}${d.self ? ' (this device)' : ''}  registered ${d.registeredAt ?? '?'}  last seen ${d.lastSeenAt ?? 'never'}${d.stale ? '  STALE' : ''}`);
      for (const d of s.ignoredDevices) printLine(`ignored device ${d.deviceId} (${d.reason === 'foreign' ? 'not of this account' : 'dropped'})`);
      for (const p of s.problems) note(`${p.code}: ${p.message}`);
    });

  group
    .command('drop-device')
    .description('stop waiting for another device: remove its registration from the backend and ignore its log here (for a ForeignDevice, or a log damaged for good)')
    .argument('<device-id>', 'the device id, as pull, status or compact printed it')
    .action(async (deviceId: string, _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<SyncCliOptions>();
      const r = await withClient(g, (c) => c.dropDevice(deviceId));
      if (g.json) printJson(r);
      else note(`device ${r.deviceId} ${r.removedFromBackend ? 'removed from the backend and ' : ''}ignored on this device`);
    });

  group
    .command('list')
    .description('print every entry on this device as JSON lines (no request)')
    .action(async (_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<SyncCliOptions>();
      const entries = await withClient(g, async (c) => c.entries());
      if (g.json) printJson(entries);
      else for (const e of entries) printJsonLine(e);
    });

  group
    .command('compact')
    .description('write a snapshot for new devices and delete log batches every device has read (one device at a time)')
    .action(async (_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<SyncCliOptions>();
      const r = await withClient(g, (c) => c.compact());
      if (g.json) printJson(r);
      else if (r.compacted) note(`snapshot ${r.generation}: ${r.entries} entries; deleted ${r.deletedBatches} batches and ${r.deletedSnapshots} old snapshots${r.staleDevices.length ? `; not seen for the retention period: ${r.staleDevices.join(', ')}` : ''}${r.foreignDevices.length ? `; not devices of this account (hold nothing back): ${r.foreignDevices.join(', ')}` : ''}; ${requestsText(r.requests)}`);
      else note(`not compacted: ${r.reason}`);
    });

  group
    .command('uninstall')
    .description('remove this device from the account and delete its local state, secret included')
    .action(async (_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<SyncCliOptions>();
      const { SyncClient } = await syncLib();
      const client = await SyncClient.open(await clientOptions(g));
      const { deviceId, stateDir } = client;
      await client.uninstall();
      if (g.json) printJson({ deviceId, removed: true, stateDir });
      else note(`device ${deviceId} removed; ${stateDir} deleted`);
    });
  group
    .command('migrate')
    .description('move this device (and the account, if not there yet) to another backend, keeping every entry and deletion')
    .requiredOption('--to <url>', 'the new backend: a directory, s3://bucket/prefix?region=…, or http(s)://host:port of "offsite serve"')
    .addHelpText(
      'after',
      `
Sends what is pending, reads what is new, copies the whole account (key check, devices,
cursors, the newest snapshot, every log batch) byte for byte, checks that the new backend lists
every batch, then uses it. The old backend is left as it was. Run it on every device: each run
only adds what is missing. For a server give its token in OFFSITE_SYNC_TOKEN; S3 credentials
come from the environment or the AWS credential chain.

Examples:
  offsite sync migrate --to 's3://my-bucket/sync?region=eu-west-1'
  OFFSITE_SYNC_TOKEN=$(cat serve-token) offsite sync migrate --to http://10.0.0.5:8787`,
    )
    .action(async (o: { to: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<SyncCliOptions>();
      const { mergeSyncConfigs, syncConfigFromEnv, resolveSyncBackend, readSyncConfigFile } = await syncLib();
      // The target takes the secrets of the environment (S3 keys, a server token) like --storage would.
      const target = resolveSyncBackend(mergeSyncConfigs(readSyncConfigFile(g.config).config, syncConfigFromEnv(), { url: o.to }))!;
      const r = await withClient(g, (c) => c.migrate(target.url, { ...(target.token ? { token: target.token } : {}), ...(target.credentials ? { credentials: target.credentials } : {}) }));
      if (g.json) {
        printJson(r);
        return;
      }
      const c = r.copy;
      note(
        `copied to ${r.to}: ${c.entryBatches} entry batches, ${c.deletionBatches} deletion batches, ${c.devices} device(s), ${c.cursors} cursor(s)` +
          `${c.snapshotGeneration !== null ? `, snapshot ${c.snapshotGeneration}` : ''}${c.targetHadAccount ? ' (the account was there already: only what was missing)' : ''}`,
      );
      for (const x of c.refused) note(`not copied (fails authentication, ${x.code}): batch ${x.batchId}`);
      note(`this device now uses ${r.to} (${r.entries} entries); requests: old backend ${requestsText(r.sourceRequests)}, new backend ${requestsText(r.targetRequests)}`);
      const env = process.env[SYNC_URL_ENV];
      if (env && env !== r.to) note(`note: ${SYNC_URL_ENV} still names ${env}: change it (or the config file), or it overrides the new backend`);
      if (c.refused.length > 0) process.exitCode = EXIT.corrupted;
    });

  registerSyncHistoryCommands(group);
}
