// Starts a real `offsite console` for one browser test: a temp data directory, a config file,
// a free port; collects everything it prints so a test can search its logs for a secret.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { OFFSITE_BIN } from '../support/cli.js';
import { tempDir } from '../support/env.js';

export interface ConsoleProcess {
  url: string;
  token: string;
  dir: string;
  dataDir: string;
  configFile: string;
  /** stdout + stderr so far, raw bytes. */
  logs(): Buffer;
  stop(): Promise<void>;
}

/** Starts `offsite console --port 0` with `offsite.toml` as given (paths relative to the temp dir). */
export async function startConsole(opts: { config?: string; dir?: string; args?: string[] } = {}): Promise<ConsoleProcess> {
  const dir = opts.dir ?? (await tempDir('offsite-web-'));
  const dataDir = path.join(dir, 'console');
  const configFile = path.join(dir, 'offsite.toml');
  await writeFile(configFile, opts.config ?? '');
  const tokenFile = path.join(dir, 'token');
  // No AWS credentials of the environment: the console must use what the page saves.
  const env: Record<string, string | undefined> = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('AWS_')) delete env[k];
  const child: ChildProcess = spawn(process.execPath, [OFFSITE_BIN, 'console', '--port', '0', '--data-dir', dataDir, '--config', configFile, '--token-file', tokenFile, ...(opts.args ?? [])], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const chunks: Buffer[] = [];
  child.stdout?.on('data', (c: Buffer) => chunks.push(c));
  child.stderr?.on('data', (c: Buffer) => chunks.push(c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`console did not start in 20 s:\n${Buffer.concat(chunks).toString()}`)), 20_000);
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const m = /console listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`console exited (${code}) before listening:\n${Buffer.concat(chunks).toString()}`));
    });
  });
  const token = (await readFile(tokenFile, 'utf8')).trim();
  return {
    url,
    token,
    dir,
    dataDir,
    configFile,
    logs: () => Buffer.concat(chunks),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}
