// Runs the real `bin/offsite` (compiled by the test runner) as a user would.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const OFFSITE_BIN = fileURLToPath(new URL('../../bin/offsite', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[], opts: { cwd?: string; env?: Record<string, string | undefined>; input?: string | Buffer } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [OFFSITE_BIN, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.stdin.end(opts.input ?? '');
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}
