// The demo's live database (scripts/demo.sh): rows 1, 2, 3, ... each with a payload derived
// from its id, so a restored copy can be checked for being a prefix of the writes.
//   node scripts/demo-sqlite.mjs create FILE ROWS   a WAL database with ROWS rows
//   node scripts/demo-sqlite.mjs write FILE         keeps inserting (50 rows every 20 ms) until killed
//   node scripts/demo-sqlite.mjs check FILE [LIVE]  integrity_check, rows 1..n with their payloads
//                                                   (and no more rows than the live database has)
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';

const [cmd, file, arg] = process.argv.slice(2);
const payloadOf = (id) => createHash('sha256').update(`row ${id}`).digest('hex').repeat(8);

if (cmd === 'create') {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)');
  const ins = db.prepare('INSERT INTO rows (id, payload) VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= Number(arg); i++) ins.run(i, payloadOf(i));
  })();
  db.close();
} else if (cmd === 'write') {
  const db = new Database(file, { timeout: 10000 });
  db.pragma('journal_mode = WAL');
  let id = db.prepare('SELECT COALESCE(MAX(id), 0) AS m FROM rows').get().m;
  const ins = db.prepare('INSERT INTO rows (id, payload) VALUES (?, ?)');
  const batch = db.transaction((n) => {
    for (let i = 0; i < n; i++) ins.run(++id, payloadOf(id));
  });
  setInterval(() => batch(50), 20);
} else if (cmd === 'check') {
  const db = new Database(file, { readonly: true, timeout: 10000 });
  const integrity = db.pragma('integrity_check')[0].integrity_check;
  const { n, max } = db.prepare('SELECT COUNT(*) AS n, COALESCE(MAX(id), 0) AS max FROM rows').get();
  let torn = 0;
  for (const row of db.prepare('SELECT id, payload FROM rows').iterate()) if (row.payload !== payloadOf(row.id)) torn++;
  db.close();
  let live = Infinity;
  if (arg) {
    const l = new Database(arg, { readonly: true, timeout: 10000 });
    live = l.prepare('SELECT COALESCE(MAX(id), 0) AS m FROM rows').get().m;
    l.close();
  }
  const ok = integrity === 'ok' && n === max && torn === 0 && max <= live;
  const ofLive = arg ? `, a prefix of the live database's ${live}` : '';
  console.log(`${file}: integrity_check ${integrity}, rows 1..${max} (${n} rows${n === max ? ', no gap' : ', GAPS'}${ofLive}), ${torn} torn`);
  process.exit(ok ? 0 : 1);
} else {
  console.error('usage: demo-sqlite.mjs create FILE ROWS | write FILE | check FILE');
  process.exit(2);
}
