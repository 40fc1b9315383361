// Starts and stops a throw-away PostgreSQL server for tests, from Debian's packages (installed
// when missing, as root). The server runs as an unprivileged user because initdb and postgres
// refuse to run as root.
//   node scripts/postgres.mjs     starts one, prints where it listens, stops it on Ctrl-C
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensureDebianPackages, freePort } from './rgw.mjs';

const execFileAsync = promisify(execFile);

/** Commands the harness and the tests run → the Debian packages that provide them. */
export const POSTGRES_PACKAGES = {
  initdb: ['postgresql'],
  pg_ctl: ['postgresql'],
  postgres: ['postgresql'],
  pg_isready: ['postgresql-client'],
  pg_dump: ['postgresql-client'],
  pg_restore: ['postgresql-client'],
  psql: ['postgresql-client'],
};

const SUPERUSER = 'postgres';
// The system user the server runs as when we are root; created on first use.
const SERVER_OS_USER = 'offsite-pg';

/**
 * The directory holding initdb, pg_ctl and the client tools: Debian's newest
 * /usr/lib/postgresql/<major>/bin, else the directory of pg_dump on PATH (other distributions,
 * Homebrew). Debian's /usr/bin/pg_dump is a wrapper script beside no initdb, hence the order.
 * Undefined when there is none.
 */
export function postgresBinDir() {
  const debianRoot = '/usr/lib/postgresql';
  if (existsSync(debianRoot)) {
    const majors = readdirSync(debianRoot)
      .filter((name) => /^\d+(\.\d+)?$/.test(name) && existsSync(path.join(debianRoot, name, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (majors.length > 0) return path.join(debianRoot, majors[0], 'bin');
  }
  const found = spawnSync('sh', ['-c', 'command -v pg_dump'], { encoding: 'utf8' });
  const pgDump = found.status === 0 ? found.stdout.trim() : '';
  if (pgDump && path.isAbsolute(pgDump)) {
    const dir = path.dirname(realpathSync(pgDump));
    if (existsSync(path.join(dir, 'initdb'))) return dir;
  }
  return undefined;
}

/** Installs Debian's PostgreSQL packages when a tool is missing (as root); returns the bin directory. */
export function ensurePostgresTools() {
  let binDir = postgresBinDir();
  const missing = (dir) => Object.keys(POSTGRES_PACKAGES).filter((cmd) => !dir || !existsSync(path.join(dir, cmd)));
  if (missing(binDir).length > 0) {
    // ensureDebianPackages looks on PATH, where Debian puts no initdb: only reached when the
    // tools are really missing, so it never reinstalls what is there.
    ensureDebianPackages(Object.fromEntries(missing(binDir).map((cmd) => [cmd, POSTGRES_PACKAGES[cmd]])));
    binDir = postgresBinDir();
  }
  const stillMissing = missing(binDir);
  if (stillMissing.length > 0) {
    throw new Error(`PostgreSQL tools not found (${stillMissing.join(', ')}): install the Debian package postgresql`);
  }
  return binDir;
}

/** uid/gid to run the server as: ourselves, or (as root) a system user created when missing. */
function serverIdentity() {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = () => spawnSync('id', ['-u', SERVER_OS_USER], { encoding: 'utf8' });
  if (lookup().status !== 0) {
    execFileSync('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', SERVER_OS_USER], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const uid = Number(lookup().stdout.trim());
  const gid = Number(execFileSync('id', ['-g', SERVER_OS_USER], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

function chownTree(target, identity) {
  chownSync(target, identity.uid, identity.gid);
  for (const entry of readdirSync(target, { withFileTypes: true })) {
    const p = path.join(target, entry.name);
    if (entry.isDirectory()) chownTree(p, identity);
    else chownSync(p, identity.uid, identity.gid);
  }
}

// Servers not stopped yet, stopped anyway when the process ends: on 'exit' (an uncaught error, a
// process.exit), and on Ctrl-C or a test runner's SIGTERM, which end Node without 'exit' handlers.
// A program with a handler of its own for a signal decides itself (and calls stop()).
const unstoppedServers = new Set();
const TERMINATING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];
function stopAllNow() {
  for (const stopNow of unstoppedServers) stopNow();
  unstoppedServers.clear();
}
function onTerminatingSignal(signal) {
  if (process.listenerCount(signal) > 1) return;
  stopAllNow();
  process.removeListener(signal, onTerminatingSignal);
  process.kill(process.pid, signal); // die of the signal, as without this handler
}
function registerForExit(stopNow) {
  if (unstoppedServers.size === 0) {
    process.on('exit', stopAllNow);
    for (const signal of TERMINATING_SIGNALS) process.on(signal, onTerminatingSignal);
  }
  unstoppedServers.add(stopNow);
}
function unregisterForExit(stopNow) {
  unstoppedServers.delete(stopNow);
  if (unstoppedServers.size === 0) {
    process.removeListener('exit', stopAllNow);
    for (const signal of TERMINATING_SIGNALS) process.removeListener(signal, onTerminatingSignal);
  }
}

/**
 * Starts PostgreSQL in a fresh temp directory, listening on 127.0.0.1 on a free port
 * (scram-sha-256 with a random password) and on a unix socket in that directory (trust: the
 * directory is private to the server's user and root). Durability is off (fsync, synchronous
 * commit, full page writes): a crash loses the test data, which is thrown away anyway.
 * Returns { host, port, socketDir, user, password, dir, url, stop() }.
 */
export async function startPostgres({ quiet = true } = {}) {
  const binDir = ensurePostgresTools();
  const identity = serverIdentity();
  const dir = mkdtempSync(path.join(tmpdir(), 'offsite-pg-'));
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const pwFile = path.join(dir, 'pwfile');
  const password = randomBytes(18).toString('base64url');
  const port = await freePort();
  const asServer = identity ? { uid: identity.uid, gid: identity.gid } : {};
  const run = (cmd, args) =>
    execFileAsync(path.join(binDir, cmd), args, { ...asServer, cwd: dir, env: { ...process.env, LC_ALL: 'C', HOME: dir }, maxBuffer: 16 * 1024 * 1024 });

  let postmasterPid;
  let stopped = false;
  // For a process that ends without calling stop(): synchronous (an 'exit' handler can do no
  // more), and 'immediate' since nothing of the data matters.
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    spawnSync(path.join(binDir, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-w', '-t', '10'], { ...asServer, stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  };
  registerForExit(stopNow);

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    unregisterForExit(stopNow);
    try {
      if (existsSync(path.join(dataDir, 'postmaster.pid'))) await run('pg_ctl', ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '30']);
    } catch {
      // pg_ctl could not stop it: end the postmaster we started, by its own pid.
      if (postmasterPid) {
        try {
          process.kill(postmasterPid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    mkdirSync(dataDir, { mode: 0o700 });
    writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
    if (identity) chownTree(dir, identity);
    const started = Date.now();
    await run('initdb', [
      '--pgdata', dataDir,
      '--username', SUPERUSER,
      '--pwfile', pwFile,
      '--auth-host', 'scram-sha-256',
      '--auth-local', 'trust',
      '--encoding', 'UTF8',
      '--locale', 'C',
      '--no-sync', // the data is thrown away: skip the fsyncs that make initdb slow
      '--no-instructions',
    ]);
    rmSync(pwFile);
    appendFileSync(
      path.join(dataDir, 'postgresql.conf'),
      [
        '',
        '# offsite test server',
        "listen_addresses = '127.0.0.1'",
        `port = ${port}`,
        `unix_socket_directories = '${dir}'`,
        'fsync = off',
        'synchronous_commit = off',
        'full_page_writes = off',
        'max_connections = 30',
        'shared_buffers = 32MB',
        "password_encryption = 'scram-sha-256'",
        '',
      ].join('\n'),
    );
    await run('pg_ctl', ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '30']);
    postmasterPid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    await waitUntilReady(binDir, port);
    if (!quiet) console.error(`# PostgreSQL up on 127.0.0.1:${port} in ${Date.now() - started} ms (${dir})`);
  } catch (e) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-4000) : '';
    const output = e && typeof e === 'object' ? `${e.stdout ?? ''}${e.stderr ?? ''}` : '';
    await stop();
    throw new Error(`could not start PostgreSQL: ${e instanceof Error ? e.message : String(e)}\n${output}${log}`);
  }

  return {
    host: '127.0.0.1',
    port,
    socketDir: dir,
    user: SUPERUSER,
    password,
    dir,
    url: `postgresql://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    stop,
  };
}

// pg_ctl -w already waits, but possibly through the socket: this proves TCP accepts connections.
async function waitUntilReady(binDir, port) {
  const deadline = Date.now() + 30_000;
  while (true) {
    const res = spawnSync(path.join(binDir, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-t', '2'], { stdio: 'ignore' });
    if (res.status === 0) return;
    if (Date.now() > deadline) throw new Error(`pg_isready: 127.0.0.1:${port} not ready after 30 s`);
    await sleep(100);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const pg = await startPostgres({ quiet: false });
  console.log(`host:   ${pg.host}\nport:   ${pg.port}\nuser:   ${pg.user}\nsocket: ${pg.socketDir}`);
  console.log(`try:    ${path.join(postgresBinDir(), 'psql')} -h ${pg.socketDir} -p ${pg.port} -U ${pg.user} postgres   (the socket needs no password)`);
  console.log('Ctrl-C stops it and removes its directory.');
  const shutdown = async () => {
    await pg.stop();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
  // Keep the event loop alive until a signal arrives.
  setInterval(() => {}, 1 << 30);
}
