// offsite snapshot save | restore | verify | info | ls | rm: the snapshot API from a shell.
import type { Command } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import {
  deleteSnapshot,
  getMetadata,
  listSnapshots,
  restore,
  snapshot,
  SnapshotNotFoundError,
  verifySnapshot,
  SNAPSHOT_URL_ENV,
  DEFAULT_SNAPSHOT_DIRECTORY,
  type SnapshotLocation,
} from '../../snapshot/index.js';
import { EXIT } from '../exit-codes.js';
import { formatBytes, note, printJson, printLine, UsageError, type GlobalOptions } from '../output.js';

interface SnapshotCliOptions extends GlobalOptions {
  storage?: string;
}

function location(o: SnapshotCliOptions): SnapshotLocation {
  return o.storage ? { storage: o.storage } : {};
}

export function registerSnapshotCommands(program: Command): void {
  const group = program
    .command('snapshot')
    .description('save and restore JSON snapshots, gzip-compressed and checked by SHA-256')
    .option('--storage <url>', `where snapshots live (default: $${SNAPSHOT_URL_ENV}, else ${DEFAULT_SNAPSHOT_DIRECTORY})`);

  group
    .command('save')
    .description('save JSON from a file (or stdin with "-") as a snapshot')
    .argument('<key>', 'snapshot key, e.g. agents/planner/latest')
    .argument('[file]', 'JSON file, or - for standard input', '-')
    .option('--agent-id <id>', 'recorded in the metadata')
    .option('--session-id <id>', 'recorded in the metadata')
    .option('--description <text>', 'recorded in the metadata')
    .action(async (key: string, file: string, o: { agentId?: string; sessionId?: string; description?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<SnapshotCliOptions>();
      const raw = file === '-' ? await text(process.stdin) : await readFile(file, 'utf8').catch(() => {
        throw new UsageError(`${file}: cannot read it (give a JSON file, or - for standard input)`);
      });
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch (e) {
        throw new UsageError(`${file === '-' ? 'stdin' : file} is not valid JSON: ${(e as Error).message}`);
      }
      const meta = await snapshot(value, key, { ...location(g), ...o });
      if (g.json) printJson(meta);
      else printLine(`saved snapshot ${key} (${formatBytes(meta.size)} JSON, ${formatBytes(meta.storedSize)} stored, sha256 ${meta.sha256.slice(0, 16)}…) in ${meta.storageUrl}`);
    });

  group
    .command('restore')
    .description('print a snapshot\'s JSON (checked before it is printed), or write it to a file')
    .argument('<key>', 'snapshot key')
    .option('-o, --output <file>', 'write the JSON to this file instead of stdout')
    .action(async (key: string, o: { output?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<SnapshotCliOptions>();
      const value = await restore(key, location(g));
      const json = `${JSON.stringify(value, null, 2)}\n`;
      if (o.output) {
        await writeFile(o.output, json);
        note(`restored snapshot ${key} -> ${o.output}`);
      } else {
        process.stdout.write(json);
      }
    });

  group
    .command('verify')
    .description('download a snapshot and check it against its recorded SHA-256 (exit 8 if corrupted)')
    .argument('<key>', 'snapshot key')
    .action(async (key: string, _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<SnapshotCliOptions>();
      const v = await verifySnapshot(key, location(g));
      if (g.json) printJson(v);
      else printLine(v.ok ? `ok  snapshot ${key}: sha256 ${v.actualSha256} matches (${formatBytes(v.size ?? 0)})` : `FAIL snapshot ${key}: ${v.error}`);
      if (!v.ok) process.exitCode = EXIT.corrupted;
    });

  group
    .command('info')
    .description('show a snapshot\'s metadata (one HEAD request)')
    .argument('<key>', 'snapshot key')
    .action(async (key: string, _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<SnapshotCliOptions>();
      const m = await getMetadata(key, location(g));
      if (g.json) return printJson(m);
      for (const [name, value] of Object.entries(m)) printLine(`${name.padEnd(16)} ${String(value)}`);
    });

  group
    .command('ls')
    .description('list snapshots')
    .argument('[prefix]', 'only keys starting with this', '')
    .action(async (prefix: string, _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<SnapshotCliOptions>();
      const entries = await listSnapshots({ ...location(g), prefix });
      if (g.json) return printJson(entries);
      for (const e of entries) printLine(`${e.lastModified.toISOString().slice(0, 19).replace('T', ' ')} ${formatBytes(e.storedSize).padStart(10)}  ${e.key}`);
    });

  group
    .command('rm')
    .description('delete a snapshot')
    .argument('<key>', 'snapshot key')
    .option('-f, --force', 'do not fail when there is no such snapshot')
    .action(async (key: string, o: { force?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<SnapshotCliOptions>();
      const existed = await deleteSnapshot(key, location(g));
      if (!existed && !o.force) throw new SnapshotNotFoundError(key, `${key}.json.gz`, g.storage ?? 'the snapshot storage');
      if (g.json) printJson({ ok: true, key, deleted: existed });
      else note(existed ? `deleted snapshot ${key}` : `no snapshot ${key}`);
    });
}
