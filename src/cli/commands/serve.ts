// offsite serve: the sync server (src/server/sync) over a storage URL, until SIGINT or
// SIGTERM. A shell: parses, resolves the token through the library, starts it, prints where.
import type { Command } from 'commander';
import { note, printJsonLine, printLine, UsageError, type GlobalOptions } from '../output.js';
import { closeOnStopSignal } from '../signals.js';

export const SERVE_TOKEN_ENV = 'OFFSITE_SERVE_TOKEN';
export const SERVE_STORAGE_ENV = 'OFFSITE_SERVE_STORAGE';

interface ServeOptions {
  storage?: string;
  host: string;
  port: string;
  tokenFile?: string;
  log?: boolean;
}

export function registerServeCommand(program: Command): void {
  const serve = program
    .command('serve')
    .description('serve end-to-end-encrypted sync to devices over HTTP, storing into a bucket or directory (the server sees only ciphertext)')
    .option('--storage <url>', `where the server stores everything: a directory or s3://… (default: $${SERVE_STORAGE_ENV})`)
    .option('--host <address>', 'address to listen on; anything but loopback must be asked for (e.g. 0.0.0.0) and wants TLS in front', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0: any free port)', '8787')
    .option('--token-file <path>', `the token file, created (0600, random) if missing (default: $XDG_CONFIG_HOME/offsite/serve-token); $${SERVE_TOKEN_ENV} overrides it`)
    .option('--log', 'log every request as a JSON line on stderr (never its headers, so never the token)')
    .addHelpText(
      'after',
      `
Every request must carry a token (Authorization: Bearer TOKEN). On first start the token file
is created and its path printed. For yourself alone, copy its content to each device as
OFFSITE_SYNC_TOKEN, and use the server's address as the sync URL there:

  offsite serve --storage 's3://my-bucket/sync?region=eu-west-1'
  # on each device:
  export OFFSITE_SYNC_TOKEN="$(cat ~/.config/offsite/serve-token)"   (copied over from the server)
  offsite sync --storage http://127.0.0.1:8787 init

The server token reaches every account. To share the server, give each person an account
token instead (offsite serve token): it reaches only the account its first init creates.

It listens on 127.0.0.1 unless --host says otherwise. Without TLS the token travels in clear
text: to serve other machines, put a TLS reverse proxy (Caddy, nginx) in front of it.
SIGINT or SIGTERM let requests in flight finish, then exit 0. See docs/sync-server.md.`,
    )
    .action(async (o: ServeOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const storageUrl = o.storage ?? process.env[SERVE_STORAGE_ENV];
      if (!storageUrl) throw new UsageError(`give the storage to serve: --storage URL (a directory or s3://…) or $${SERVE_STORAGE_ENV}`);
      const port = Number(o.port);
      if (!/^\d+$/.test(o.port) || port > 65535) throw new UsageError(`--port ${o.port}: a port is a whole number from 0 to 65535`);
      const { defaultServeTokenFile, resolveServeToken } = await import('../../sync/index.js');
      const { isLoopbackHost, serveSync } = await import('../../server/index.js');
      const envToken = process.env[SERVE_TOKEN_ENV];
      const token = await resolveServeToken({ file: o.tokenFile ?? defaultServeTokenFile(), ...(envToken ? { token: envToken } : {}) });
      if (!isLoopbackHost(o.host)) note(`warning: listening on ${o.host}, not loopback: without TLS in front the token and the (encrypted) data travel in clear text; use a TLS reverse proxy`);
      const server = await serveSync({ storageUrl, token: token.token, host: o.host, port, ...(o.log ? { logger: true } : {}) });
      if (g.json) printJsonLine({ listening: server.url, storage: server.storageUrl, tokenFile: token.file ?? null, tokenCreated: token.created });
      else {
        printLine(`listening on ${server.url} (storage ${server.storageUrl})`);
        if (token.created) note(`created the token file ${token.file}: copy its content to each device as OFFSITE_SYNC_TOKEN`);
        else note(token.file ? `token from ${token.file}` : `token from $${SERVE_TOKEN_ENV}`);
      }
      await closeOnStopSignal(() => server.close());
      if (!g.json) note('stopped');
    });

  serve
    .command('token')
    .description('print a new account token: it reaches only the account its first `sync init` creates (one per person)')
    .option('--token-file <path>', `the server's token file (default: $XDG_CONFIG_HOME/offsite/serve-token); $${SERVE_TOKEN_ENV} overrides it`)
    .option('--id <id>', 'the token of this id again, after the server token changed (its account stays bound to the id)')
    .addHelpText(
      'after',
      `
Account tokens are derived from the server's token: minting one needs no running server and
stores nothing. The token goes to stdout, once; give it to its person, who sets it as
OFFSITE_SYNC_TOKEN on each of their devices. A new server token (delete the token file and
restart) revokes every account token; re-issue the ones to keep with --id.`,
    )
    .action(async (_o: unknown, cmd: Command) => {
      // --token-file is also an option of serve itself: whichever parsed it, take it.
      const o = cmd.optsWithGlobals<GlobalOptions & { tokenFile?: string; id?: string }>();
      const { createAccountToken, defaultServeTokenFile, resolveServeToken } = await import('../../sync/index.js');
      const envToken = process.env[SERVE_TOKEN_ENV];
      const server = await resolveServeToken({ file: o.tokenFile ?? defaultServeTokenFile(), create: false, ...(envToken ? { token: envToken } : {}) });
      const minted = createAccountToken(server.token, o.id === undefined ? {} : { id: o.id });
      if (o.json) printJsonLine(minted);
      else {
        printLine(minted.token);
        note(`account token ${minted.id}${o.id === undefined ? '' : ' (re-issued)'}: give it to one person, as OFFSITE_SYNC_TOKEN on their devices`);
      }
    });
}
