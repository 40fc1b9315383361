// offsite console: the HTTP API and page over the backup jobs (src/server/console over
// src/console), until SIGINT or SIGTERM; `console rekey` and `console token --reset`.
// A shell: parses, opens the engine, starts the server, prints where.
import path from 'node:path';
import type { Command } from 'commander';
import { note, printJsonLine, printLine, UsageError, type GlobalOptions } from '../output.js';
import { closeOnStopSignal } from '../signals.js';

interface ConsoleCliOptions {
  config?: string;
  dataDir?: string;
  host: string;
  port: string;
  allowRemote?: boolean;
  allowedHost: string[];
  syncConfig?: string;
  archiveCatalog?: string;
  tokenFile?: string;
  schedule: boolean;
  log: boolean;
}

const consoleLib = () => import('../../console/index.js');

async function dataDirOf(o: { dataDir?: string }): Promise<string> {
  const { defaultConsoleDataDir } = await consoleLib();
  return o.dataDir ? path.resolve(o.dataDir) : defaultConsoleDataDir();
}

/** The token: written 0600 to --token-file, else printed once to stderr. */
async function handOverToken(token: string, tokenFile: string | undefined, what: string): Promise<void> {
  if (tokenFile) {
    const { writePrivateFile } = await import('../../files/index.js');
    await writePrivateFile(path.resolve(tokenFile), `${token}\n`);
    note(`${what} written to ${path.resolve(tokenFile)} (0600; stored hashed)`);
  } else {
    process.stderr.write(`${what} (shown once, stored hashed): ${token}\n`);
  }
}

export function registerConsoleCommands(program: Command): void {
  const cmd = program
    .command('console')
    .description('serve the console: an HTTP API and a web page for S3 settings, backup jobs, backups and restores; runs the jobs on their schedules')
    .option('--config <file>', 'the jobs config file (default: $OFFSITE_CONFIG, else ./offsite.toml)')
    .option('--data-dir <dir>', 'where the console keeps its state: console.db, console.key, catalog.db, restores/ (default: $OFFSITE_CONSOLE_DIR, else ~/.local/share/offsite/console)')
    .option('--host <address>', 'address to listen on; anything but loopback needs --allow-remote', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0: any free port)', '8750')
    .option('--allow-remote', 'allow a --host that is not loopback (put TLS in front of it)')
    .option('--allowed-host <name>', 'also accept this Host header (NAME or NAME:PORT; repeatable), e.g. the name of a reverse proxy', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--sync-config <file>', 'show this sync device in the Sync view (default: $OFFSITE_SYNC_CONFIG)')
    .option('--archive-catalog <file>', "show this catalog's archives in the Archives view (default: the console's own catalog)")
    .option('--token-file <file>', 'on first start, write the admin token here (0600) instead of printing it')
    .option('--no-schedule', 'do not run the jobs on their schedules (backups by hand only)')
    .option('--no-log', 'no request log on stderr')
    .addHelpText(
      'after',
      `
On first start the console creates its data directory (0700), a key file console.key (0600,
32 random bytes as hex; or use the file named by $OFFSITE_CONSOLE_KEY_FILE, which must exist)
that encrypts the S3 secret at rest, and an admin token, printed once:

  offsite console --config offsite.toml
  console listening on http://127.0.0.1:8750
  admin token (shown once, stored hashed): …

Open the URL and log in with the token, or call the API with "Authorization: Bearer TOKEN"
(the OpenAPI document is at /api/openapi.json). Jobs without a destination of their own
upload to the S3 settings saved in the page (s3://BUCKET/PREFIX/JOB/).

Keep a copy of console.key: without it the saved S3 settings cannot be read, and the console
refuses to start. Lost the token? offsite console token --reset. New key? offsite console rekey.
SIGINT or SIGTERM stop the schedules, abort running uploads (no partial object is left) and
exit 0. See docs/console.md.`,
    )
    .action(async (o: ConsoleCliOptions, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const port = Number(o.port);
      if (!/^\d+$/.test(o.port) || port > 65535) throw new UsageError(`--port ${o.port}: a port is a whole number from 0 to 65535`);
      const { isLoopbackHost, startConsoleServer } = await import('../../server/index.js');
      if (!isLoopbackHost(o.host)) {
        if (!o.allowRemote) throw new UsageError(`--host ${o.host} is not a loopback address: add --allow-remote to listen there (and put TLS in front: the token and cookie would travel in clear text)`);
        note(`warning: listening on ${o.host}, not loopback: without TLS in front the admin token, the session cookie and the S3 settings travel in clear text; use a TLS reverse proxy and --allowed-host NAME`);
      }
      const { openConsole } = await consoleLib();
      const dataDir = await dataDirOf(o);
      const engine = await openConsole({
        dataDir,
        ...(o.config ? { configFile: o.config } : {}),
        ...(o.syncConfig ? { syncConfig: path.resolve(o.syncConfig) } : {}),
        ...(o.archiveCatalog ? { archiveCatalog: path.resolve(o.archiveCatalog) } : {}),
        schedule: o.schedule,
      });
      const token = engine.takeCreatedToken();
      if (token) await handOverToken(token, o.tokenFile, 'admin token');
      if (engine.keyCreated) note(`created the key file of the console's secrets: keep a copy of it (${path.join(dataDir, 'console.key')})`);
      const server = await startConsoleServer({ engine, host: o.host, port, allowedHosts: o.allowedHost, log: o.log });
      if (g.json) printJsonLine({ event: 'listening', url: server.url, dataDir });
      else printLine(`console listening on ${server.url}`);
      await closeOnStopSignal(() => server.close());
      if (!g.json) note('console stopped');
    });

  cmd
    .command('rekey')
    .description("re-encrypt the console's saved secrets under a new key, then replace the key file (stop the console first)")
    .option('--data-dir <dir>', 'the console data directory (default: $OFFSITE_CONSOLE_DIR, else ~/.local/share/offsite/console)')
    .option('--new-key-file <file>', 'the new key (64 hex digits); default: a new random key')
    .addHelpText(
      'after',
      `
The secrets are re-encrypted in one transaction; the new key is written beside the key file
first (console.key.new) and moved over it after the commit, so an interruption at any point
leaves a console that starts (it finishes a half-done rekey itself). Keep a copy of the new key.`,
    )
    .action(async (_o: unknown, c: Command) => {
      // Options shared with `console` (--data-dir) are parsed by it: read them merged.
      const o = c.optsWithGlobals<GlobalOptions & { dataDir?: string; newKeyFile?: string }>();
      const g = o;
      const { rekeyConsole } = await consoleLib();
      const r = await rekeyConsole({ dataDir: await dataDirOf(o), ...(o.newKeyFile ? { newKeyFile: path.resolve(o.newKeyFile) } : {}) });
      if (g.json) printJsonLine({ keyFile: r.keyFile, oldKeyId: r.oldKeyId, newKeyId: r.newKeyId, values: r.values });
      else printLine(`re-encrypted ${r.values} secret(s) under key ${r.newKeyId} (was ${r.oldKeyId}); the key file ${r.keyFile} now holds the new key: keep a copy of it`);
    });

  cmd
    .command('token')
    .description('make a new admin token (the old one stops working at once; sessions of a running console stay until it restarts)')
    .option('--reset', 'replace the admin token (required: there is no way to show the old one, only its hash is kept)')
    .option('--data-dir <dir>', 'the console data directory (default: $OFFSITE_CONSOLE_DIR, else ~/.local/share/offsite/console)')
    .option('--token-file <file>', 'write the new token here (0600) instead of printing it')
    .action(async (_o: unknown, c: Command) => {
      const o = c.optsWithGlobals<{ reset?: boolean; dataDir?: string; tokenFile?: string }>();
      if (!o.reset) throw new UsageError('the admin token is stored hashed and cannot be shown again: pass --reset to make a new one');
      const { resetAdminToken } = await consoleLib();
      const token = await resetAdminToken({ dataDir: await dataDirOf(o) });
      await handOverToken(token, o.tokenFile, 'new admin token');
    });
}
