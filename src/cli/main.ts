// The `offsite` command: parses arguments, calls the library, prints results. Errors end as one
// line on stderr (the stack only with --debug) and an exit code from exit-codes.ts.
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { registerArchiveCommands } from './commands/archive.js';
import { registerBackupCommands } from './commands/backup.js';
import { registerConsoleCommands } from './commands/console.js';
import { registerDaemonCommands } from './commands/daemon.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerObjectCommands } from './commands/objects.js';
import { registerPolicyCommands } from './commands/policy.js';
import { registerServeCommand } from './commands/serve.js';
import { registerSnapshotCommands } from './commands/snapshot.js';
import { registerSyncCommands } from './commands/sync.js';
import { errorCodeOf, EXIT, exitCodeFor } from './exit-codes.js';
import { CommandFailure, printJson } from './output.js';
import { clearProgressLine } from './progress.js';

// The SDK warns on every run that its 2027 releases will need Node 22; Offsite pins its SDK
// version, so on a CLI that notice is noise between the user and the one line that matters.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function buildProgram(): Command {
  const program = new Command('offsite')
    .description('Local-first backup and sync to S3-compatible storage.\n\nStorage URLs: a local directory (./bucket, file:///srv/bucket) or s3://BUCKET/PREFIX?endpoint=URL&region=R&path_style=true.\nS3 credentials come from the AWS default chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, instance roles.')
    .version(pkg.version)
    .option('--json', 'print results (and errors) as JSON on stdout')
    .option('--debug', 'print stack traces of errors')
    .option('--no-progress', 'no progress bars (they are only drawn on a terminal anyway)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  program.addHelpText(
    'after',
    `
Examples:
  offsite put notes.txt ./demo-bucket/notes.txt
  offsite ls ./demo-bucket
  offsite put backup.tar 's3://my-bucket/backups/backup.tar?region=eu-west-1'
  offsite doctor 's3://my-bucket?endpoint=http://127.0.0.1:7480'
  offsite snapshot save agents/a1 state.json
  offsite backup app && offsite backups app      (jobs in ./offsite.toml: [jobs.app] source = "sqlite:app.db")

Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 credentials or permission, 5 no such bucket,
6 precondition failed, 7 store unreachable (after retries), 8 corrupted data, 9 archived object.`,
  );
  registerObjectCommands(program);
  registerSnapshotCommands(program);
  registerBackupCommands(program);
  registerDaemonCommands(program);
  registerArchiveCommands(program);
  registerPolicyCommands(program);
  registerDoctorCommand(program);
  registerSyncCommands(program);
  registerServeCommand(program);
  registerConsoleCommands(program);
  const overrideExits = (c: Command) => {
    c.exitOverride();
    for (const sub of c.commands) overrideExits(sub);
  };
  overrideExits(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const wantsJson = argv.includes('--json');
  const debug = argv.includes('--debug');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version "errors" are successful exits; commander already printed the message.
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if ((e as { code?: string }).code === 'EPIPE') return EXIT.ok; // `offsite cat … | head`
    const message = (e as Error)?.message ?? String(e);
    clearProgressLine();
    process.stderr.write(`offsite: ${firstLine(message)}\n`);
    if (debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    if (wantsJson) printJson({ ok: false, error: { ...(e instanceof CommandFailure ? e.details : {}), code: errorCodeOf(e), message } });
    return exitCodeFor(e);
  }
}

function firstLine(s: string): string {
  const line = s.split('\n')[0] ?? s;
  return line.length > 0 ? line : 'unknown error';
}

// If a stream ever stalls, the event loop empties with the command unfinished and Node would
// exit 0: never report success for work that did not complete.
let finished = false;
// `offsite … | head`: the reader went away. That ends the output, not in an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  finished = true;
  process.exit(typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok);
});
process.on('exit', () => {
  if (!finished) {
    process.stderr.write('offsite: internal error: the command stopped before it finished (run again with --debug and report it)\n');
    process.exitCode = EXIT.failure;
  }
});
const code = await main(process.argv.slice(2));
finished = true;
process.exitCode = code;
