// Which module defines which top-level command: what main.ts loads for a run.
import type { Command } from 'commander';

export type Register = (program: Command) => void;

/**
 * The modules that define the commands, in the order `--help` lists them, and the top-level
 * commands each defines. A run loads only the module of the command it runs (the engines behind
 * the others, and the AWS SDK behind the storage layer, cost start-up time and memory a
 * `--version` or a sync hook should not pay); `--help` and unknown commands load them all.
 * The table lives apart from main.ts, which runs the program when imported;
 * test/cli/startup.test.ts checks that these names are the ones each module registers.
 */
export const COMMAND_MODULES: ReadonlyArray<{ names: readonly string[]; load: () => Promise<Register> }> = [
  { names: ['put', 'get', 'cat', 'ls', 'rm'], load: async () => (await import('./commands/objects.js')).registerObjectCommands },
  { names: ['snapshot'], load: async () => (await import('./commands/snapshot.js')).registerSnapshotCommands },
  { names: ['backup', 'backups', 'restore', 'prune', 'status'], load: async () => (await import('./commands/backup.js')).registerBackupCommands },
  { names: ['daemon', 'schedule'], load: async () => (await import('./commands/daemon.js')).registerDaemonCommands },
  { names: ['archive'], load: async () => (await import('./commands/archive.js')).registerArchiveCommands },
  { names: ['policy'], load: async () => (await import('./commands/policy.js')).registerPolicyCommands },
  { names: ['doctor'], load: async () => (await import('./commands/doctor.js')).registerDoctorCommand },
  { names: ['sync'], load: async () => (await import('./commands/sync.js')).registerSyncCommands },
  { names: ['serve'], load: async () => (await import('./commands/serve.js')).registerServeCommand },
  { names: ['console'], load: async () => (await import('./commands/console.js')).registerConsoleCommands },
];

/** The command modules a run needs: the one of its command, none for --version, all otherwise. */
export async function commandsFor(argv: readonly string[]): Promise<Register[]> {
  const first = argv.find((a) => !a.startsWith('-'));
  if (first === undefined && argv.some((a) => a === '--version' || a === '-V')) return [];
  const own = COMMAND_MODULES.find((m) => first !== undefined && m.names.includes(first));
  return Promise.all((own ? [own] : COMMAND_MODULES).map((m) => m.load()));
}
