// offsite doctor: the "test connection" of a storage URL, one line per check.
import type { Command } from 'commander';
import type { CheckStatus } from '../../doctor/index.js';
import { EXIT } from '../exit-codes.js';
import { printJson, printLine, type GlobalOptions } from '../output.js';

const MARK: Record<CheckStatus, string> = { pass: 'ok  ', warn: 'warn', fail: 'FAIL', skip: 'skip' };

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('check a storage URL: credentials, bucket, a put/get/list/delete probe, conditional writes, versioning, object lock, lifecycle')
    .argument('<url>', 's3://BUCKET/PREFIX?endpoint=…, or a local directory')
    .action(async (url: string, _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      // Loaded here: the storage layer (the AWS SDK) costs ~150 ms of start-up other commands skip.
      const { runDoctor } = await import('../../doctor/index.js');
      const report = await runDoctor(url);
      if (g.json) {
        printJson(report);
      } else {
        const width = Math.max(...report.checks.map((c) => c.title.length));
        for (const c of report.checks) printLine(`${MARK[c.status]}  ${c.title.padEnd(width)}  ${c.detail}`);
        const failed = report.checks.filter((c) => c.status === 'fail').length;
        printLine(failed ? `${failed} check(s) failed` : `all checks passed (${report.stats.totalRequests} requests)`);
      }
      if (!report.ok) process.exitCode = EXIT.failure;
    });
}
