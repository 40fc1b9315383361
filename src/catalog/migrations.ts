/**
 * The catalog schema, as an ordered list of migrations. Migration N (1-based) takes a catalog
 * from `PRAGMA user_version` N-1 to N. Rules, because catalogs in the field are upgraded by
 * whatever version of Offsite opens them next:
 * - Never edit or reorder a released entry; append a new one.
 * - Each runs inside the one transaction that also sets user_version, so a crash leaves the
 *   old schema or the new one. Do not put BEGIN/COMMIT or PRAGMA foreign_keys in them (the
 *   latter is a no-op inside a transaction); a table rebuild must leave no foreign key
 *   violations, which migrate() checks before committing.
 * - Older Offsite versions refuse a catalog whose version is past their list (CatalogTooNew),
 *   so a migration need not keep the schema readable by them.
 *
 * Timestamps are ISO-8601 UTC strings (they sort as text); booleans are 0/1.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: archives, session notes, the operation log, throughput samples, Glacier restores.
  `
  CREATE TABLE archives (
    id            INTEGER PRIMARY KEY,
    session_id    TEXT    NOT NULL,
    year          INTEGER NOT NULL,
    key           TEXT    NOT NULL,
    manifest_key  TEXT    NOT NULL,
    -- Storage URL without secrets: the same key may be archived to several destinations.
    destination   TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'uploading', 'done', 'failed')),
    -- S3 multipart upload id: kept through failures so a rerun can resume or abort it
    -- (abandoned parts are billed until aborted).
    upload_id     TEXT,
    size          INTEGER,
    sha256        TEXT,
    etag          TEXT,
    storage_class TEXT,
    compression   TEXT    NOT NULL CHECK (compression IN ('none', 'gzip')),
    encrypted     INTEGER NOT NULL CHECK (encrypted IN (0, 1)),
    file_count    INTEGER,
    source_bytes  INTEGER,
    started_at    TEXT,
    completed_at  TEXT,
    error         TEXT,
    verified_at   TEXT,
    verify_ok     INTEGER CHECK (verify_ok IN (0, 1)),
    verify_result TEXT,
    UNIQUE (destination, key),
    -- "Done" means the store confirmed the object and we know what it holds: a row cannot
    -- claim it without the facts, whatever code path wrote it.
    CHECK (status <> 'done' OR (size IS NOT NULL AND sha256 IS NOT NULL AND completed_at IS NOT NULL))
  );
  CREATE INDEX archives_session ON archives (session_id);
  CREATE INDEX archives_year ON archives (year, key);
  CREATE INDEX archives_incomplete ON archives (destination) WHERE status <> 'done';

  CREATE TABLE session_notes (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT    NOT NULL,
    year        INTEGER NOT NULL,
    key         TEXT    NOT NULL,
    destination TEXT    NOT NULL,
    sha256      TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    recorded_at TEXT    NOT NULL,
    UNIQUE (destination, key)
  );
  CREATE INDEX session_notes_session ON session_notes (session_id);

  CREATE TABLE operations (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    detail      TEXT    NOT NULL,  -- JSON
    status      TEXT    NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'interrupted')),
    started_at  TEXT    NOT NULL,
    finished_at TEXT,
    bytes       INTEGER,
    seconds     REAL,
    error       TEXT,
    -- Who runs it: how markStaleOperations() tells a live run from one whose process died.
    pid         INTEGER NOT NULL,
    host        TEXT    NOT NULL
  );
  CREATE INDEX operations_running ON operations (status) WHERE status = 'running';

  CREATE TABLE throughput (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    bytes       INTEGER NOT NULL CHECK (bytes > 0),
    seconds     REAL    NOT NULL CHECK (seconds > 0),
    recorded_at TEXT    NOT NULL
  );
  CREATE INDEX throughput_kind ON throughput (kind, id);

  CREATE TABLE restores (
    id           INTEGER PRIMARY KEY,
    session_id   TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    destination  TEXT    NOT NULL,
    tier         TEXT    NOT NULL CHECK (tier IN ('Expedited', 'Standard', 'Bulk')),
    days         INTEGER NOT NULL CHECK (days >= 1),
    status       TEXT    NOT NULL CHECK (status IN ('requested', 'ready', 'done')),
    requested_at TEXT    NOT NULL,
    ready_at     TEXT,
    done_at      TEXT
  );
  -- At most one open request per object: asking again updates it instead of piling up.
  CREATE UNIQUE INDEX restores_open ON restores (destination, key) WHERE status <> 'done';
  `,
  // 2: requests by type per operation (backup jobs record what each run cost).
  `
  ALTER TABLE operations ADD COLUMN requests TEXT;  -- JSON {"PutObject": 3, ...}, or NULL
  CREATE INDEX operations_kind ON operations (kind, id);
  `,
  // 3: what authenticates each archive's facts. manifest_auth: 'local' when this catalog's own
  // upload recorded them; otherwise the check of the manifest `catalog rebuild` read them from
  // ('authentic', 'unsigned', 'forged', 'no-key', 'other-key'). manifest_sha256: the SHA-256 of
  // that manifest's bytes, to tell later whether the manifest in the bucket is still the same.
  // Rows from before: a rebuilt row has no started_at unless a local upload of the same object
  // preceded it, so started_at tells local facts from ones read off an unsigned manifest.
  `
  ALTER TABLE archives ADD COLUMN manifest_sha256 TEXT;
  ALTER TABLE archives ADD COLUMN manifest_auth TEXT
    CHECK (manifest_auth IN ('local', 'authentic', 'unsigned', 'forged', 'no-key', 'other-key'));
  UPDATE archives SET manifest_auth = CASE WHEN started_at IS NOT NULL THEN 'local' ELSE 'unsigned' END WHERE status = 'done';
  `,
  // 4: one row per backup a job made: what restore checks a local copy or a downloaded object
  // against (the object's own metadata is only as trustworthy as whoever can write the bucket).
  `
  CREATE TABLE backups (
    id          INTEGER PRIMARY KEY,
    job         TEXT    NOT NULL,
    -- The file name, the same locally and in the bucket; a fixed key_template reuses it.
    name        TEXT    NOT NULL,
    -- Storage URL without secrets once uploaded; NULL while the backup exists only locally.
    destination TEXT,
    -- Of the backup file as stored (after compression and encryption).
    size        INTEGER NOT NULL CHECK (size >= 0),
    sha256      TEXT    NOT NULL,
    encrypted   INTEGER NOT NULL CHECK (encrypted IN (0, 1)),
    compression TEXT    NOT NULL CHECK (compression IN ('none', 'gzip')),
    created_at  TEXT    NOT NULL,
    uploaded_at TEXT,
    UNIQUE (job, name),
    CHECK ((destination IS NULL) = (uploaded_at IS NULL))
  );
  `,
];
