// offsite put | get | cat | ls | rm: one object (or a prefix) at a storage URL.
import type { Command } from 'commander';
import { createReadStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ListEntry, PutOptions, Storage } from '../../storage/index.js';
import { formatBytes, note, parsePairs, printJson, printLine, UsageError, type GlobalOptions } from '../output.js';
import { progressBar, progressWanted } from '../progress.js';

const MIB = 1024 * 1024;
/** The storage layer (and the AWS SDK behind it), loaded by the commands that use it, not at start-up. */
const storageLayer = () => import('../../storage/index.js');

/** Opens the storage of a URL, runs `fn`, and always closes it. */
async function withStorage<T>(storageUrl: string, overrides: { partSize?: number; concurrency?: number }, fn: (s: Storage) => Promise<T>): Promise<T> {
  const { openStorage } = await storageLayer();
  const storage = openStorage(storageUrl, overrides);
  try {
    return await fn(storage);
  } finally {
    await storage.close();
  }
}

function transferOverrides(o: { partSize?: string; concurrency?: string }): { partSize?: number; concurrency?: number } {
  const positive = (v: string | undefined, name: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${name} must be a positive whole number, not "${v}"`);
    return n;
  };
  const partSize = positive(o.partSize, '--part-size');
  const concurrency = positive(o.concurrency, '--concurrency');
  return { ...(partSize ? { partSize: partSize * MIB } : {}), ...(concurrency ? { concurrency } : {}) };
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function registerObjectCommands(program: Command): void {
  program
    .command('put')
    .description('upload a file (or stdin with "-") to an object URL')
    .argument('<source>', 'file to upload, or - for standard input')
    .argument('<url>', 'destination object: s3://BUCKET/KEY?endpoint=…, or PATH/KEY in a local directory bucket')
    .option('--content-type <type>', 'Content-Type stored with the object')
    .option('--storage-class <class>', 'storage class, e.g. STANDARD_IA, GLACIER, DEEP_ARCHIVE')
    .option('--meta <name=value>', 'user metadata (repeatable)', collect)
    .option('--tag <name=value>', 'object tag (repeatable)', collect)
    .option('--if-none-match', 'create only: fail with exit code 6 if the object already exists')
    .option('--part-size <MiB>', 'multipart part size in MiB (S3; default 8)')
    .option('--concurrency <n>', 'parts uploaded in parallel (S3; default 4)')
    .action(async (source: string, url: string, o: Record<string, string | string[] | boolean | undefined>, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { splitObjectUrl } = await storageLayer();
      const { storageUrl, key } = splitObjectUrl(url);
      let size: number | undefined;
      let body: Readable;
      if (source === '-') {
        body = process.stdin;
      } else {
        const st = await stat(source).catch(() => undefined);
        if (!st?.isFile()) throw new UsageError(`${source}: no such file (give a file path, or - for standard input)`);
        size = st.size;
        body = createReadStream(source);
      }
      const bar = progressBar(`put ${key}`, size, progressWanted(g));
      const opts: PutOptions = {
        ...(o.contentType ? { contentType: String(o.contentType) } : {}),
        ...(o.storageClass ? { storageClass: String(o.storageClass) } : {}),
        ...(o.ifNoneMatch ? { ifNoneMatch: '*' as const } : {}),
        onProgress: (n) => bar.update(n),
        ...(size !== undefined ? { sizeHint: size } : {}),
      };
      const metadata = parsePairs(o.meta as string[] | undefined, '--meta');
      const tags = parsePairs(o.tag as string[] | undefined, '--tag');
      if (metadata) opts.metadata = metadata;
      if (tags) opts.tags = tags;
      const { result, stats } = await withStorage(storageUrl, transferOverrides(o as { partSize?: string; concurrency?: string }), async (s) => {
        const result = await s.put(key, body, opts);
        return { result, stats: s.stats() };
      });
      bar.finish();
      if (g.json) printJson({ ok: true, url, key: result.key, size: result.size, etag: result.etag, requests: stats.requests });
      else printLine(`uploaded ${source === '-' ? 'stdin' : source} -> ${url} (${formatBytes(result.size)}, etag ${result.etag})`);
    });

  program
    .command('get')
    .description('download an object to a file (or stdout with "-")')
    .argument('<url>', 'object URL: s3://BUCKET/KEY?endpoint=…, or PATH/KEY in a local directory bucket')
    .argument('[dest]', 'file to write (default: the last part of the key, in the current directory); - for stdout')
    .option('--force', 'overwrite an existing file')
    .option('--part-size <MiB>', 'bytes per ranged GET, in MiB (default 8)')
    .option('--concurrency <n>', 'ranged GETs in parallel, each written at its offset (default 4; 1: one GET, the fastest on a loopback server)')
    .action(async (url: string, dest: string | undefined, o: { force?: boolean; partSize?: string; concurrency?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { splitObjectUrl } = await storageLayer();
      const { storageUrl, key } = splitObjectUrl(url);
      if (dest === '-') return void (await streamToStdout(storageUrl, key));
      const target = dest ?? path.basename(key);
      if (!o.force && (await stat(target).catch(() => undefined))) throw new UsageError(`${target} exists: pass --force to overwrite it, or name another destination`);
      // Written beside the target and renamed at the end: an interrupted download never leaves a
      // truncated file under the real name.
      const partial = `${target}.offsite-partial`;
      const { partSize, concurrency } = transferOverrides(o);
      const { downloadToFile } = await storageLayer();
      // A partial left by a killed run, or a link planted in its place, goes first (rm removes a
      // link, not what it points to); the download then creates the file anew.
      await rm(partial, { force: true });
      const info = await withStorage(storageUrl, {}, async (s) => {
        const head = await s.head(key);
        const bar = progressBar(`get ${key}`, head.size, progressWanted(g));
        try {
          // Ranged GETs in parallel, each written at its offset (download-file.ts).
          const { info } = await downloadToFile(s, key, partial, { info: head, ...(partSize ? { partSize } : {}), ...(concurrency ? { concurrency } : {}), onProgress: (n) => bar.update(n) });
          bar.finish();
          await rename(partial, target);
          return info;
        } catch (e) {
          await rm(partial, { force: true });
          throw e;
        }
      });
      if (g.json) printJson({ ok: true, url, file: path.resolve(target), size: info.size, etag: info.etag });
      else printLine(`downloaded ${url} -> ${target} (${formatBytes(info.size)})`);
    });

  program
    .command('cat')
    .description('write an object to standard output')
    .argument('<url>', 'object URL')
    .action(async (url: string) => {
      const { splitObjectUrl } = await storageLayer();
      const { storageUrl, key } = splitObjectUrl(url);
      await streamToStdout(storageUrl, key);
    });

  program
    .command('ls')
    .description('list objects under a bucket, prefix or local directory')
    .argument('<url>', 's3://BUCKET/PREFIX?endpoint=…, or a local directory bucket')
    .option('-r, --recursive', 'list every object below, not just one level')
    .action(async (url: string, o: { recursive?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { splitPrefixUrl } = await storageLayer();
      const { storageUrl, prefix } = splitPrefixUrl(url);
      const entries: ListEntry[] = [];
      await withStorage(storageUrl, {}, async (s) => {
        for await (const e of s.list({ prefix, ...(o.recursive ? {} : { delimiter: '/' }) })) {
          if (g.json) entries.push(e);
          else if (e.type === 'prefix') printLine(`${''.padEnd(19)} ${'PRE'.padStart(10)}  ${e.prefix}`);
          else printLine(`${e.lastModified.toISOString().slice(0, 19).replace('T', ' ')} ${formatBytes(e.size).padStart(10)}  ${e.key}`);
        }
      });
      if (g.json) printJson(entries);
    });

  program
    .command('rm')
    .description('delete objects (or, with --recursive, everything under a prefix)')
    .argument('<url...>', 'object URLs, or one prefix URL with --recursive')
    .option('-r, --recursive', 'delete every object under the prefix')
    .option('-f, --force', 'do not fail on objects that do not exist')
    .action(async (urls: string[], o: { recursive?: boolean; force?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { isStorageError, splitObjectUrl, splitPrefixUrl } = await storageLayer();
      const deleted: string[] = [];
      for (const url of urls) {
        if (o.recursive) {
          const { storageUrl, prefix } = splitPrefixUrl(url);
          await withStorage(storageUrl, {}, async (s) => {
            const keys: string[] = [];
            for await (const e of s.list({ prefix })) if (e.type === 'object') keys.push(e.key);
            await s.deleteMany(keys);
            deleted.push(...keys);
            if (!g.json) note(`deleted ${keys.length} object(s) under ${url}`);
          });
          continue;
        }
        const { storageUrl, key } = splitObjectUrl(url);
        await withStorage(storageUrl, {}, async (s) => {
          // S3 does not say whether a DELETE removed anything: a HEAD first catches typos.
          try {
            await s.head(key);
          } catch (e) {
            if (o.force && isStorageError(e, 'NotFound')) return;
            throw e;
          }
          await s.delete(key);
          deleted.push(key);
          if (!g.json) note(`deleted ${url}`);
        });
      }
      if (g.json) printJson({ ok: true, deleted });
    });
}

async function streamToStdout(storageUrl: string, key: string): Promise<void> {
  await withStorage(storageUrl, {}, async (s) => {
    const got = await s.get(key);
    await pipeline(got.body, process.stdout);
  });
}
