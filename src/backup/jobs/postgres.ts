/**
 * PostgreSQL dumps and restores through the server's own tools: `pg_dump --format=custom` (a
 * consistent snapshot taken in one transaction while the database stays in use) and
 * `pg_restore`. Debian ships them in the package `postgresql-client`.
 *
 * Secrets never reach a command line (visible to every user in `ps`), a log or an error: the
 * tools get a connection string without them, the password in a temporary passfile and a key
 * passphrase (`sslpassword`, which has no environment variable) in a temporary service file
 * (both mode 0600, in a private temp directory, deleted when the tool has exited, whatever
 * happened). The tools run with a minimal environment (toolEnvironment): the variables libpq
 * and the tools read, not Offsite's own (S3 credentials, sync tokens).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';

/** Where to connect: a URL, or else libpq's PG* variables. */
export interface PostgresTarget {
  /** `postgres://` or `postgresql://` URL; may hold a password (`user:pw@` or `?password=`). */
  url?: string;
  /** Where the PG* variables come from (PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD,
   * PGPASSFILE, PGSSLMODE, ...): with a URL they fill what it leaves out, as libpq does.
   * Default: process.env. */
  env?: NodeJS.ProcessEnv;
}

export type PostgresErrorCode = 'ToolMissing' | 'ConnectionFailed' | 'AuthFailed' | 'DumpFailed' | 'RestoreFailed' | 'InvalidUrl';

export class PostgresError extends Error {
  readonly code: PostgresErrorCode;
  /** The tool's stderr, summarised and password-free. */
  readonly detail: string;

  constructor(code: PostgresErrorCode, message: string, opts: { detail?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = `${code}Error`;
    this.code = code;
    this.detail = opts.detail ?? '';
  }
}

export function isPostgresError(e: unknown, code?: PostgresErrorCode): e is PostgresError {
  return e instanceof PostgresError && (code === undefined || e.code === code);
}

/**
 * The URL with its password replaced by `***` (`user:pw@host`, `?password=pw`, and the key
 * passphrase `?sslpassword=pw`). Works on malformed URLs too: the userinfo ends at the last `@`
 * before the query, so a password holding an unescaped `/` or `@` is still hidden.
 */
export function redactPostgresUrl(url: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url);
  let out = url;
  if (scheme) {
    const rest = url.slice(scheme[0].length);
    const queryAt = rest.indexOf('?');
    const authorityEnd = rest.lastIndexOf('@', queryAt === -1 ? rest.length : queryAt);
    if (authorityEnd !== -1) {
      const userinfo = rest.slice(0, authorityEnd);
      const colon = userinfo.indexOf(':');
      if (colon !== -1) out = `${scheme[0]}${userinfo.slice(0, colon)}:***${rest.slice(authorityEnd)}`;
    }
  }
  return out.replace(/([?&](?:ssl)?password=)[^&#]*/gi, '$1***');
}

/** "host:port/database (user NAME)", from the URL and the PG* variables; never the password. */
export function describePostgresTarget(target: PostgresTarget): string {
  return formatTarget(resolveTarget(target));
}

/**
 * Runs `pg_dump --format=custom` and returns its output as `stream`. The stream ends only after
 * pg_dump exited successfully: on a failure it errors instead (with the same PostgresError that
 * `done` rejects with), so a consumer uploading it can never take a truncated dump for a whole
 * one. Aborting `signal`, or destroying `stream`, kills pg_dump.
 *
 * Read `stream` to its end (or destroy it): `done` settles only once pg_dump's output has been
 * read, so awaiting `done` first would wait forever on a dump larger than the pipe buffers.
 * Throws PostgresError('InvalidUrl') at once for a malformed URL; everything else arrives
 * through `done` (ToolMissing, AuthFailed, ConnectionFailed, DumpFailed, or the abort reason).
 */
export function dumpPostgres(
  target: PostgresTarget,
  opts: { signal?: AbortSignal; pgDumpPath?: string } = {},
): { stream: Readable; done: Promise<{ stderr: string }> } {
  const conn = resolveTarget(target);
  const description = formatTarget(conn);
  const tool = opts.pgDumpPath ?? 'pg_dump';
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      callback(null, chunk);
    },
    flush(callback) {
      // Hold the end of the stream until pg_dump's exit status says the dump is whole.
      done.then(
        () => callback(),
        (e: unknown) => callback(e as Error),
      );
    },
  });
  const done = runTool(tool, ['--format=custom', '--no-password', `--dbname=${conn.conninfo}`], conn, {
    signal: opts.signal,
    stdout: stream,
    failureCode: 'DumpFailed',
    what: `pg_dump of ${description}`,
  });
  done.catch((e: unknown) => {
    if (!stream.destroyed) stream.destroy(e as Error);
  });
  return { stream, done };
}

/**
 * Restores a custom-format dump with `pg_restore --no-owner --exit-on-error` into the target
 * database. `clean` drops the objects of the dump before recreating them (`--clean --if-exists`).
 * `createDatabase` first creates the target database when it does not exist.
 */
export async function restorePostgres(
  target: PostgresTarget,
  dumpFile: string,
  opts: { clean?: boolean; createDatabase?: boolean; signal?: AbortSignal; pgRestorePath?: string } = {},
): Promise<void> {
  const conn = resolveTarget(target);
  const description = formatTarget(conn);
  opts.signal?.throwIfAborted();
  await access(dumpFile).catch((cause: unknown) => {
    throw new PostgresError('RestoreFailed', `cannot read the dump ${dumpFile}: ${(cause as Error).message}`, { cause });
  });
  const pgRestore = opts.pgRestorePath ?? 'pg_restore';
  if (opts.createDatabase) {
    // psql on the maintenance database rather than `pg_restore --create`: --create makes the
    // database named in the dump, whereas we restore into the one the target names (often a
    // new name beside the original, to check a backup without touching the live database).
    const psql = opts.pgRestorePath ? path.join(path.dirname(opts.pgRestorePath), 'psql') : 'psql';
    await createDatabaseIfMissing(conn, psql, opts.signal);
  }
  const args = ['--no-password', '--no-owner', '--exit-on-error'];
  if (opts.clean) args.push('--clean', '--if-exists');
  args.push(`--dbname=${conn.conninfo}`, dumpFile);
  await runTool(pgRestore, args, conn, { signal: opts.signal, failureCode: 'RestoreFailed', what: `pg_restore into ${description}` });
}

/**
 * Reads a custom-format dump's table of contents (`pg_restore --list`), which fails on a file
 * that is not a whole pg_dump archive; resolves with the number of entries.
 */
export async function listPostgresDump(dumpFile: string, opts: { pgRestorePath?: string } = {}): Promise<number> {
  const tool = opts.pgRestorePath ?? 'pg_restore';
  const out = await new Promise<string>((resolve, reject) => {
    execFile(tool, ['--list', dumpFile], { maxBuffer: 256 * 1024 * 1024, env: toolEnvironment(process.env, {}) }, (error, stdout, stderr) => {
      if (!error) resolve(stdout);
      else if ((error as NodeJS.ErrnoException).code === 'ENOENT') reject(classifySpawnError(tool, error, { what: 'pg_restore --list', failureCode: 'RestoreFailed', signal: undefined }));
      else reject(new PostgresError('RestoreFailed', `pg_restore --list ${dumpFile}: ${summarise(stderr) || error.message}`, { detail: summarise(stderr) }));
    });
  });
  return out.split('\n').filter((line) => line !== '' && !line.startsWith(';')).length;
}

// --- connection ------------------------------------------------------------------------------

interface ResolvedTarget {
  /** What the tools get as --dbname: a URL or a keyword string, never with a password. */
  conninfo: string;
  /** The same for another database of the same server (the maintenance database). */
  conninfoFor(database: string): string;
  host: string | undefined;
  port: string | undefined;
  user: string;
  database: string;
  password: string | undefined;
  /** The passphrase of the client key (`sslpassword=` in the URL), given through a service file. */
  sslPassword: string | undefined;
  /** The tools' environment: the few variables they need, with the target's PG* variables and no PGPASSWORD. */
  env: NodeJS.ProcessEnv;
}

/**
 * What a PostgreSQL tool may see of our environment: where to find programs and the user's own
 * libpq files (HOME: ~/.pgpass, ~/.pg_service.conf, ~/.postgresql/ certificates), the locale,
 * the time zone, temp files, Kerberos for GSSAPI logins; on Windows what a process needs to start
 * and where pgpass.conf lives. Never the rest: AWS_SECRET_ACCESS_KEY, OFFSITE_SYNC_TOKEN and the
 * like are none of pg_dump's business, and a process's environment is readable by its user's
 * other processes.
 */
const TOOL_ENV = /^(PATH|HOME|USER|LOGNAME|LANG|LANGUAGE|LC_[A-Z_]+|TZ|TMPDIR|KRB5CCNAME|KRB5_CONFIG|KRB5_KTNAME|KRB5_CLIENT_KTNAME|SYSTEMROOT|SYSTEMDRIVE|WINDIR|APPDATA|USERPROFILE|TEMP|TMP|COMSPEC|PATHEXT)$/i;

function toolEnvironment(ours: NodeJS.ProcessEnv, target: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(ours)) if (TOOL_ENV.test(k)) env[k] = v;
  // Only the target's PG* variables reach the tools, so a PGDATABASE of our own process never
  // mixes with a target given as { env }.
  for (const [k, v] of Object.entries(target)) if (k.startsWith('PG') && k !== 'PGPASSWORD') env[k] = v;
  return env;
}

function resolveTarget(target: PostgresTarget): ResolvedTarget {
  const source = target.env ?? process.env;
  const env = toolEnvironment(process.env, source);
  const defaultUser = source.PGUSER || osUserName();
  if (target.url === undefined) {
    const database = source.PGDATABASE || defaultUser;
    return {
      conninfo: keywordConninfo(database),
      conninfoFor: keywordConninfo,
      host: source.PGHOST || undefined,
      port: source.PGPORT || undefined,
      user: defaultUser,
      database,
      password: source.PGPASSWORD || undefined,
      sslPassword: undefined,
      env,
    };
  }
  const u = parsePostgresUrl(target.url);
  const user = u.user ?? defaultUser;
  const password = u.password ?? (source.PGPASSWORD || undefined);
  // A passfile= in the URL would win over the passfile that carries the password.
  const dropKeys = password === undefined ? ['password', 'sslpassword'] : ['password', 'passfile', 'sslpassword'];
  if (u.sslPassword !== undefined) {
    // The service file that carries it replaces the user's: a service of theirs would be lost.
    if (u.params.some((p) => p.key === 'service') || source.PGSERVICE) {
      throw new PostgresError('InvalidUrl', `invalid PostgreSQL URL ${redactPostgresUrl(target.url)}: sslpassword cannot be combined with a service (service= or PGSERVICE); put sslpassword in that service's section of your service file instead`);
    }
    if (/[\r\n]|\s$/.test(u.sslPassword)) {
      throw new PostgresError('InvalidUrl', `invalid PostgreSQL URL ${redactPostgresUrl(target.url)}: an sslpassword with a line break or trailing white space cannot be passed to the tools; change the key's passphrase`);
    }
  }
  return {
    conninfo: buildUrl(u, { dropKeys }),
    conninfoFor: (database) => buildUrl(u, { dropKeys: [...dropKeys, 'dbname'], database }),
    host: u.host ?? (source.PGHOST || undefined),
    port: u.port ?? (source.PGPORT || undefined),
    user,
    database: u.database ?? (source.PGDATABASE || user),
    password,
    sslPassword: u.sslPassword,
    env,
  };
}

function formatTarget(c: { host: string | undefined; port: string | undefined; user: string; database: string }): string {
  const host = c.host ?? 'local socket';
  return `${c.port ? `${host}:${c.port}` : host}/${c.database} (user ${c.user})`;
}

function osUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return 'postgres';
  }
}

/** `dbname='...'` in libpq's keyword syntax (the rest comes from the PG* variables). */
function keywordConninfo(database: string): string {
  return `dbname='${database.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

interface ParsedUrl {
  /** `postgresql://[user@]hostspec`, as written. */
  prefix: string;
  /** The path after the first `/`, as written. */
  rawPath: string;
  /** Query parameters as written, with their decoded keys. */
  params: { key: string; raw: string }[];
  user: string | undefined;
  password: string | undefined;
  sslPassword: string | undefined;
  host: string | undefined;
  port: string | undefined;
  database: string | undefined;
}

/**
 * Splits a libpq URL by hand rather than with WHATWG URL, which rejects what libpq accepts
 * (several hosts `h1:5432,h2:5433`, a socket directory as `%2Fvar%2Frun%2Fpostgresql`) and would
 * re-encode what it keeps. The parts given to the tools stay byte for byte as written.
 */
function parsePostgresUrl(url: string): ParsedUrl {
  const invalid = (why: string) => new PostgresError('InvalidUrl', `invalid PostgreSQL URL ${redactPostgresUrl(url)}: ${why}`);
  const scheme = /^(postgres|postgresql):\/\//i.exec(url);
  if (!scheme) throw invalid('it must start with postgresql:// or postgres://');
  const rest = url.slice(scheme[0].length);
  if (rest.includes('#')) throw invalid('a fragment (#...) is not allowed; percent-encode a # in a password as %23');
  const queryAt = rest.indexOf('?');
  const beforeQuery = queryAt === -1 ? rest : rest.slice(0, queryAt);
  const query = queryAt === -1 ? '' : rest.slice(queryAt + 1);
  // The last @ (libpq takes the first): a password with an unescaped @ still reads as intended.
  const at = beforeQuery.lastIndexOf('@');
  const userinfo = at === -1 ? '' : beforeQuery.slice(0, at);
  const hostAndPath = at === -1 ? beforeQuery : beforeQuery.slice(at + 1);
  const slash = hostAndPath.indexOf('/');
  const hostspec = slash === -1 ? hostAndPath : hostAndPath.slice(0, slash);
  const rawPath = slash === -1 ? '' : hostAndPath.slice(slash + 1);

  // libpq decodes %XX only (no + for space).
  const decode = (s: string, what: string): string => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw invalid(`bad percent-encoding in the ${what}`);
    }
  };
  const colon = userinfo.indexOf(':');
  const rawUser = colon === -1 ? userinfo : userinfo.slice(0, colon);
  const parsed: ParsedUrl = {
    prefix: `${scheme[0]}${rawUser ? `${rawUser}@` : ''}${hostspec}`,
    rawPath,
    params: [],
    user: rawUser ? decode(rawUser, 'user name') : undefined,
    password: colon === -1 ? undefined : decode(userinfo.slice(colon + 1), 'password'),
    sslPassword: undefined,
    host: undefined,
    port: undefined,
    database: rawPath ? decode(rawPath, 'database name') : undefined,
  };
  if (hostspec.includes(',')) {
    parsed.host = decode(hostspec, 'host list');
  } else if (hostspec) {
    // host, host:port, [v6]:port
    const m = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(hostspec);
    if (!m) throw invalid('cannot read the host and port');
    parsed.host = decode(m[1] ?? '', 'host') || undefined;
    parsed.port = m[2] || undefined;
  }
  for (const raw of query.split('&').filter(Boolean)) {
    const eq = raw.indexOf('=');
    const key = decode(eq === -1 ? raw : raw.slice(0, eq), 'query');
    const value = decode(eq === -1 ? '' : raw.slice(eq + 1), `parameter ${key}`);
    parsed.params.push({ key, raw });
    if (key === 'password') parsed.password = value;
    else if (key === 'sslpassword') parsed.sslPassword = value;
    else if (key === 'dbname') parsed.database = value;
    else if (key === 'host') parsed.host = value;
    else if (key === 'port') parsed.port = value;
    else if (key === 'user') parsed.user = value;
  }
  return parsed;
}

/** The URL without the parameters in `dropKeys`; with `database`, pointing at that database. */
function buildUrl(u: ParsedUrl, opts: { dropKeys: string[]; database?: string }): string {
  const params = u.params.filter((p) => !opts.dropKeys.includes(p.key)).map((p) => p.raw);
  const dbPath = opts.database === undefined ? u.rawPath : encodeURIComponent(opts.database);
  return `${u.prefix}${dbPath ? `/${dbPath}` : ''}${params.length > 0 ? `?${params.join('&')}` : ''}`;
}

// --- running the tools -----------------------------------------------------------------------

// Passfile directories of tools still running, removed if our process exits before they do: a
// crash must not leave a password on disk. One 'exit' listener for all of them.
const livePassfileDirs = new Set<string>();
let exitCleanupInstalled = false;
function removeLivePassfiles(): void {
  for (const dir of livePassfileDirs) rmSync(dir, { recursive: true, force: true });
}

/** The name of the service in our temporary service file. */
const SERVICE_NAME = 'offsite';

/**
 * The secrets of one run in files only our user can read: the password in a passfile
 * (`*:*:*:*:password`), a key passphrase in a service file (libpq reads `sslpassword` from no
 * environment variable). In a private directory, removed by dispose().
 */
function secretFilesFor(conn: ResolvedTarget): { env: NodeJS.ProcessEnv; dispose(): void } {
  const env: NodeJS.ProcessEnv = {};
  let password = conn.password;
  if (password !== undefined && /[\r\n]/.test(password)) {
    // A passfile line cannot hold a line break: such a password goes in the child's environment
    // (readable only by our own user and root, unlike a command line).
    env.PGPASSWORD = password;
    password = undefined;
  }
  if (password === undefined && conn.sslPassword === undefined) return { env, dispose() {} };
  if (!exitCleanupInstalled) {
    exitCleanupInstalled = true;
    process.once('exit', removeLivePassfiles);
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'offsite-pgpass-'));
  livePassfileDirs.add(dir);
  const dispose = (): void => {
    if (!livePassfileDirs.delete(dir)) return;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (password !== undefined) {
      const file = path.join(dir, 'pgpass');
      // Any host, port, database and user: the file serves this one connection only.
      writeFileSync(file, `*:*:*:*:${password.replace(/\\/g, '\\\\').replace(/:/g, '\\:')}\n`, { mode: 0o600, flag: 'wx' });
      env.PGPASSFILE = file;
    }
    if (conn.sslPassword !== undefined) {
      // libpq takes a service file's value as written, from after the "=" to the end of the line.
      const file = path.join(dir, 'pg_service.conf');
      writeFileSync(file, `[${SERVICE_NAME}]\nsslpassword=${conn.sslPassword}\n`, { mode: 0o600, flag: 'wx' });
      env.PGSERVICEFILE = file;
      env.PGSERVICE = SERVICE_NAME;
    }
    return { env, dispose };
  } catch (e) {
    dispose();
    throw e;
  }
}

interface RunOptions {
  signal: AbortSignal | undefined;
  /** Where stdout goes (pg_dump's dump); otherwise it is discarded. */
  stdout?: Transform;
  /** Input for the tool's stdin (psql's script). */
  stdin?: string;
  failureCode: PostgresErrorCode;
  /** "pg_dump of HOST:PORT/DB (user U)", for messages. */
  what: string;
}

const STDERR_KEEP_BYTES = 64 * 1024;
const KILL_GRACE_MS = 2000;

/** Runs a PostgreSQL tool with the target's secrets in private files and a minimal environment; resolves with its stderr. */
function runTool(tool: string, args: string[], conn: ResolvedTarget, opts: RunOptions): Promise<{ stderr: string }> {
  return new Promise((resolve, reject) => {
    const { signal } = opts;
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    let pass: { env: NodeJS.ProcessEnv; dispose(): void };
    try {
      pass = secretFilesFor(conn);
    } catch (cause) {
      reject(new PostgresError(opts.failureCode, `${opts.what}: cannot write a temporary passfile: ${(cause as Error).message}`, { cause }));
      return;
    }
    let child: ChildProcess;
    try {
      child = spawn(tool, args, {
        env: { ...conn.env, ...pass.env },
        stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', opts.stdout ? 'pipe' : 'ignore', 'pipe'],
      });
    } catch (cause) {
      pass.dispose();
      reject(classifySpawnError(tool, cause, opts));
      return;
    }

    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const kill = (): void => {
      if (settled) return;
      child.kill('SIGTERM');
      killTimer ??= setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      killTimer.unref();
    };

    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      stderr = (stderr + s).slice(-STDERR_KEEP_BYTES);
    });
    if (opts.stdin !== undefined) {
      child.stdin?.on('error', () => {}); // EPIPE when the tool exits early: its exit status tells why
      child.stdin?.end(opts.stdin);
    }
    if (opts.stdout && child.stdout) {
      const out = opts.stdout;
      child.stdout.pipe(out);
      // The consumer gave up on the dump: stop pg_dump rather than leave it blocked on a full pipe.
      out.once('close', () => {
        if (child.exitCode === null && child.signalCode === null) kill();
      });
    }

    const onAbort = (): void => kill();
    signal?.addEventListener('abort', onAbort, { once: true });

    const finish = (error: unknown, value?: { stderr: string }): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      pass.dispose();
      if (error === undefined && value) resolve(value);
      else reject(error);
    };
    child.once('error', (cause) => {
      kill();
      finish(classifySpawnError(tool, cause, opts));
    });
    // 'close', not 'exit': stdout and stderr are fully read by then.
    child.once('close', (code, signalName) => {
      const clean = redactSecrets(stderr, conn.password, conn.sslPassword);
      if (signal?.aborted) finish(signal.reason);
      else if (code === 0) finish(undefined, { stderr: clean });
      else finish(classifyFailure(clean, code, signalName, opts));
    });
  });
}

function classifySpawnError(tool: string, cause: unknown, opts: RunOptions): PostgresError {
  const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (errno === 'ENOENT' || errno === 'EACCES') {
    return new PostgresError(
      'ToolMissing',
      `${opts.what}: ${path.basename(tool)} not found (${tool}); install the Debian package postgresql-client (apt-get install postgresql-client), or give its path`,
      { cause },
    );
  }
  return new PostgresError(opts.failureCode, `${opts.what}: cannot run ${tool}: ${(cause as Error).message}`, { cause });
}

/** Stderr to an error: the kind of failure from libpq's and the tools' messages. */
function classifyFailure(stderr: string, code: number | null, signalName: NodeJS.Signals | null, opts: RunOptions): PostgresError {
  const detail = summarise(stderr);
  const status = signalName ? `killed by ${signalName}` : `exit ${code}`;
  const because = detail ? `: ${detail}` : ` (${status}, no message)`;
  if (/password authentication failed|no password supplied|password is required|authentication failed|no pg_hba\.conf entry|FATAL:\s+role "[^"]*" does not exist/i.test(stderr)) {
    return new PostgresError('AuthFailed', `${opts.what}: authentication refused${because}; check the user and the password (URL, PGPASSWORD or passfile)`, { detail });
  }
  if (/FATAL:\s+database "[^"]*" does not exist/.test(stderr)) {
    return new PostgresError('ConnectionFailed', `${opts.what}: no such database${because}`, { detail });
  }
  if (/connection to server .* failed|could not connect to server|could not translate host name|server closed the connection unexpectedly|timeout expired|SSL error|SSL SYSCALL error/i.test(stderr)) {
    return new PostgresError('ConnectionFailed', `${opts.what}: cannot connect${because}`, { detail });
  }
  return new PostgresError(opts.failureCode, `${opts.what} failed (${status})${detail ? `: ${detail}` : ''}`, { detail });
}

/** The error lines of a tool's stderr, on one line, at most a few hundred characters. */
function summarise(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const errors = lines.filter((l) => /error:|FATAL:|ERROR:|DETAIL:|HINT:/.test(l));
  const picked = (errors.length > 0 ? errors.slice(0, 4) : lines.slice(-3))
    .map((l) => l.replace(/^(pg_dump|pg_restore|psql)(:[^:]*)?:\s*error:\s*/, '').replace(/\s+/g, ' '));
  const text = picked.join('; ');
  return text.length > 600 ? `${text.slice(0, 597)}...` : text;
}

/** Belt and braces: the tools do not echo passwords, but a URL in a message might hold one. */
function redactSecrets(text: string, ...secrets: Array<string | undefined>): string {
  let out = text.replace(/postgres(ql)?:\/\/\S+/gi, (url) => redactPostgresUrl(url));
  for (const secret of secrets) if (secret) out = out.split(secret).join('***');
  return out;
}

/** Creates the target database when it does not exist, from the `postgres` maintenance database. */
async function createDatabaseIfMissing(conn: ResolvedTarget, psql: string, signal: AbortSignal | undefined): Promise<void> {
  // Variables keep the name out of SQL string building: :'db' quotes a literal, :"db" an identifier.
  // template0, as pg_dump's documentation advises: a restore into a copy of template1 collides
  // with whatever was added to template1.
  const script = [
    "SELECT NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') AS missing \\gset",
    '\\if :missing',
    'CREATE DATABASE :"db" TEMPLATE template0;',
    '\\endif',
    '',
  ].join('\n');
  const run = (maintenance: string) =>
    runTool(psql, ['--no-password', '--no-psqlrc', '--quiet', '--set=ON_ERROR_STOP=1', `--set=db=${conn.database}`, `--dbname=${conn.conninfoFor(maintenance)}`], conn, {
      signal,
      stdin: script,
      failureCode: 'RestoreFailed',
      what: `creating database ${JSON.stringify(conn.database)} on ${formatTarget(conn)}`,
    });
  try {
    await run('postgres');
  } catch (e) {
    // Some servers have no `postgres` database; template1 is always there.
    if (isPostgresError(e, 'ConnectionFailed') && /database "postgres" does not exist/.test(e.detail)) await run('template1');
    // Created meanwhile by someone else: what we wanted.
    else if (isPostgresError(e, 'RestoreFailed') && /already exists/.test(e.detail)) return;
    else throw e;
  }
}
