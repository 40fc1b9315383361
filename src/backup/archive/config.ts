/**
 * Archive job configuration: a commented TOML file, every value overridable by an environment
 * variable and then by a command-line flag (flags > environment > file > defaults). Secrets
 * (the age passphrase) come from the environment only, never from the file.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { defaultManifestKeyFile, MANIFEST_KEY_ENV } from '../../codec/index.js';

export const CONFIG_FILE_ENV = 'OFFSITE_ARCHIVE_CONFIG';
export const DEFAULT_CONFIG_FILE = 'offsite-archive.toml';

const storageClass = z.string().regex(/^[A-Z_]+$/, 'a storage class in capitals, e.g. STANDARD, GLACIER, DEEP_ARCHIVE');
const tagMap = z.record(z.string().min(1).max(128), z.string().max(256));

export const archiveConfigSchema = z
  .object({
    destination: z
      .object({
        url: z.string().min(1, 'set it to a storage URL, e.g. "s3://my-bucket?region=eu-west-1" or "./archive-bucket"'),
        region: z.string().optional(),
        prefix: z.string().default(''),
      })
      .strict(),
    sessions: z
      .object({
        root: z.string().min(1, 'set it to the directory that holds the sessions, e.g. "/data/sessions"'),
        layout: z.enum(['year/session', 'session']).default('year/session'),
        year_pattern: z.string().default('(19|20)\\d{2}'),
        notes: z.array(z.string()).default(['{session}*.md']),
      })
      .strict(),
    upload: z
      .object({
        key_template: z.string().default('backups/raw/{year}/{session}.tar'),
        notes_key_template: z.string().default('sessions/{year}/{file}'),
        storage_class: storageClass.default('STANDARD'),
        compress: z.enum(['none', 'gzip']).default('none'),
        tags: tagMap.default({}),
        concurrency: z.number().int().min(1).max(64).default(4),
        part_size_mib: z.number().int().min(5).max(5120).default(8),
        bwlimit: z.string().default(''),
      })
      .strict()
      .prefault({}),
    encryption: z
      .object({
        recipients: z.array(z.string().regex(/^age1[0-9a-z]+$/, 'an age recipient such as age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p')).default([]),
        passphrase_env: z.string().default(''),
        identity_file: z.string().default(''),
        manifest_key_file: z.string().default(''),
      })
      .strict()
      .prefault({}),
    catalog: z
      .object({ path: z.string().default('.offsite/archive-catalog.db') })
      .strict()
      .prefault({}),
    lifecycle: z
      .object({
        rules: z
          .array(z.object({ tag: z.string().regex(/^[^=]+=.*$/, 'name=value'), storage_class: storageClass, days: z.number().int().min(0), id: z.string().optional() }).strict())
          .optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type ArchiveConfigFile = z.infer<typeof archiveConfigSchema>;

/** The resolved configuration the engine works with. */
export interface ArchiveConfig {
  /** Storage URL of the destination (the prefix folded in). */
  destinationUrl: string;
  sessionsRoot: string;
  layout: 'year/session' | 'session';
  yearPattern: RegExp;
  notesPatterns: string[];
  keyTemplate: string;
  notesKeyTemplate: string;
  storageClass: string;
  compress: 'none' | 'gzip';
  tags: Record<string, string>;
  concurrency: number;
  partSizeMiB: number;
  /** "" = unlimited; else a rate such as "20M". */
  bwlimit: string;
  recipients: string[];
  /** Read from the environment variable named in the file; never stored. */
  passphrase: string | undefined;
  /** The environment variable the passphrase is read from (for messages). */
  passphraseEnv: string;
  identityFile: string;
  /**
   * The manifest key (HMAC) that signs each manifest on upload and authenticates manifests read
   * from the bucket without a catalog; created on the first upload. Never in the bucket.
   */
  manifestKeyFile: string;
  catalogPath: string;
  lifecycleRules: Array<{ tag: { key: string; value: string }; storageClass: string; days: number; id?: string }> | undefined;
  /** The file it came from, if any. */
  source: string | undefined;
}

/**
 * age encrypts a file to recipients or to a passphrase, never both. Uploads call this; restore
 * and verify may use both (the passphrase for older archives).
 */
export function assertOneEncryptionKind(config: Pick<ArchiveConfig, 'recipients' | 'passphrase' | 'passphraseEnv'>): void {
  if (config.recipients.length > 0 && config.passphrase !== undefined) {
    throw new ConfigError(
      `archive config: encryption.recipients is set and so is ${config.passphraseEnv}; an archive is encrypted to recipients or to a passphrase, not both: unset ${config.passphraseEnv} for uploads, or remove encryption.recipients`,
    );
  }
}

/** Archives are encrypted when the config names recipients or a passphrase is set. */
export function isEncrypted(config: Pick<ArchiveConfig, 'recipients' | 'passphrase'>): boolean {
  return config.recipients.length > 0 || config.passphrase !== undefined;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly code = 'InvalidConfig';
}

/** Environment variables that override the file, by field (documented in the generated file). */
export const CONFIG_ENV: Record<string, string> = {
  'destination.url': 'OFFSITE_ARCHIVE_URL',
  'destination.region': 'OFFSITE_ARCHIVE_REGION',
  'destination.prefix': 'OFFSITE_ARCHIVE_PREFIX',
  'sessions.root': 'OFFSITE_ARCHIVE_ROOT',
  'sessions.layout': 'OFFSITE_ARCHIVE_LAYOUT',
  'upload.storage_class': 'OFFSITE_ARCHIVE_STORAGE_CLASS',
  'upload.compress': 'OFFSITE_ARCHIVE_COMPRESS',
  'upload.concurrency': 'OFFSITE_ARCHIVE_CONCURRENCY',
  'upload.bwlimit': 'OFFSITE_ARCHIVE_BWLIMIT',
  'encryption.recipients': 'OFFSITE_ARCHIVE_RECIPIENTS',
  'encryption.identity_file': 'OFFSITE_ARCHIVE_IDENTITY_FILE',
  'encryption.manifest_key_file': 'OFFSITE_ARCHIVE_MANIFEST_KEY_FILE',
  'catalog.path': 'OFFSITE_ARCHIVE_CATALOG',
};
/** The passphrase is only ever read from the environment. */
export const PASSPHRASE_ENV = 'OFFSITE_ARCHIVE_PASSPHRASE';

/** Flags map onto the same dotted field names. */
export type ConfigOverrides = Partial<Record<keyof typeof CONFIG_ENV | 'upload.tags', string | number | string[] | Record<string, string>>>;

/**
 * Loads the configuration: `file` (or $OFFSITE_ARCHIVE_CONFIG, or ./offsite-archive.toml when it
 * exists), then the environment, then `overrides`. Relative paths in a file are relative to it.
 */
export async function loadArchiveConfig(
  file: string | undefined,
  overrides: ConfigOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
  opts: { needsSessions?: boolean } = {},
): Promise<ArchiveConfig> {
  const explicit = file ?? env[CONFIG_FILE_ENV];
  const candidate = explicit ?? DEFAULT_CONFIG_FILE;
  let raw: Record<string, unknown> = {};
  let source: string | undefined;
  try {
    const text = await readFile(candidate, 'utf8');
    source = path.resolve(candidate);
    raw = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof TomlError) throw new ConfigError(`${candidate}: not valid TOML: ${e.message.split('\n')[0]}`);
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || explicit) {
      throw new ConfigError(`${candidate}: cannot read the config file (${(e as Error).message}); create one with "offsite archive init-config"`);
    }
  }
  for (const [field, name] of Object.entries(CONFIG_ENV)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    setField(raw, field, field === 'upload.concurrency' ? Number(v) : field === 'encryption.recipients' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v);
  }
  for (const [field, v] of Object.entries(overrides)) if (v !== undefined) setField(raw, field, v);

  // Commands about the bucket only (policies) do not need to know where the sessions are.
  if (opts.needsSessions === false) setField(raw, 'sessions.root', ((raw.sessions as Record<string, unknown> | undefined)?.root as string | undefined) || '.');
  const parsed = archiveConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.');
    const envName = CONFIG_ENV[field];
    const where = source ? `in ${source}` : 'no config file was found';
    const how = envName ? ` (or set ${envName})` : '';
    const message = issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message;
    throw new ConfigError(`archive config: ${field || '(top level)'} ${message}${how}; ${where}${source ? '' : '; create one with "offsite archive init-config"'}`);
  }
  return resolve(parsed.data, source, env);
}

function setField(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const [section, key] = dotted.split('.') as [string, string];
  const sec = (obj[section] ??= {}) as Record<string, unknown>;
  if (typeof sec !== 'object' || sec === null) throw new ConfigError(`archive config: ${section} must be a table ([${section}])`);
  if (key === 'tags' && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    sec[key] = { ...((sec[key] as Record<string, string>) ?? {}), ...(value as Record<string, string>) };
  } else {
    sec[key] = value;
  }
}

function resolve(c: ArchiveConfigFile, source: string | undefined, env: NodeJS.ProcessEnv): ArchiveConfig {
  const base = source ? path.dirname(source) : process.cwd();
  const abs = (p: string) => (p === '' ? '' : path.resolve(base, p.replace(/^~(?=\/|$)/, env.HOME ?? '~')));
  let yearPattern: RegExp;
  try {
    yearPattern = new RegExp(c.sessions.year_pattern);
  } catch (e) {
    throw new ConfigError(`archive config: sessions.year_pattern is not a regular expression: ${(e as Error).message}`);
  }
  const passphraseEnv = c.encryption.passphrase_env || PASSPHRASE_ENV;
  const passphrase = env[passphraseEnv] || undefined;
  if (c.encryption.passphrase_env && !passphrase) {
    throw new ConfigError(`archive config: encryption.passphrase_env names ${c.encryption.passphrase_env}, which is not set; export it, or remove passphrase_env`);
  }
  return {
    destinationUrl: destinationUrl(c.destination, base),
    sessionsRoot: abs(c.sessions.root),
    layout: c.sessions.layout,
    yearPattern,
    notesPatterns: c.sessions.notes,
    keyTemplate: c.upload.key_template,
    notesKeyTemplate: c.upload.notes_key_template,
    storageClass: c.upload.storage_class,
    compress: c.upload.compress,
    tags: c.upload.tags,
    concurrency: c.upload.concurrency,
    partSizeMiB: c.upload.part_size_mib,
    bwlimit: c.upload.bwlimit,
    recipients: c.encryption.recipients,
    passphrase,
    passphraseEnv,
    identityFile: abs(c.encryption.identity_file),
    // Unset: the key every Offsite feature shares ($OFFSITE_MANIFEST_KEY_FILE, else ~/.config/offsite/manifest.key).
    manifestKeyFile: abs(c.encryption.manifest_key_file) || defaultManifestKeyFile(env),
    catalogPath: abs(c.catalog.path),
    lifecycleRules: c.lifecycle.rules?.map((r) => {
      const i = r.tag.indexOf('=');
      return { tag: { key: r.tag.slice(0, i), value: r.tag.slice(i + 1) }, storageClass: r.storage_class, days: r.days, ...(r.id ? { id: r.id } : {}) };
    }),
    source,
  };
}

/** Folds region and prefix into the URL, so the rest of Offsite sees one storage URL. */
function destinationUrl(d: ArchiveConfigFile['destination'], base: string): string {
  const isS3 = d.url.startsWith('s3://');
  if (!isS3) {
    const root = d.url.startsWith('file://') ? d.url : path.resolve(base, d.url);
    return d.prefix ? path.join(root.replace(/^file:\/\//, ''), d.prefix) : root;
  }
  const u = new URL(d.url);
  if (d.region && !u.searchParams.has('region')) u.searchParams.set('region', d.region);
  if (d.prefix) u.pathname = `${u.pathname.replace(/\/+$/, '')}/${d.prefix.replace(/^\/+/, '')}`;
  // URL() percent-encodes; keep the query readable (endpoint=http://...) for messages.
  return `s3://${u.host}${u.pathname === '/' ? '' : u.pathname}${u.search ? `?${decodeURIComponent(u.searchParams.toString())}` : ''}`;
}

/** The commented file `offsite archive init-config` writes. */
export function exampleConfig(opts: { url?: string; root?: string } = {}): string {
  return `# Offsite archive configuration: one tar archive per session directory, by year.
# Every value can be overridden by an environment variable (named beside it) and by a flag.
# Secrets never go in this file: S3 credentials come from the AWS default chain
# (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, instance role), and an age
# passphrase from ${PASSPHRASE_ENV}.

[destination]
# Where archives go: "s3://BUCKET?region=REGION", "s3://BUCKET?endpoint=http://host:port" for
# MinIO/Ceph/B2/R2, or a local directory.                                   (OFFSITE_ARCHIVE_URL)
url = ${JSON.stringify(opts.url ?? 's3://my-archive-bucket?region=eu-west-1')}
# region = "eu-west-1"                                                    (OFFSITE_ARCHIVE_REGION)
# Key prefix inside the bucket, e.g. "observatory".                       (OFFSITE_ARCHIVE_PREFIX)
prefix = ""

[sessions]
# The directory that holds the sessions.                                    (OFFSITE_ARCHIVE_ROOT)
root = ${JSON.stringify(opts.root ?? '/data/sessions')}
# "year/session": ROOT/2024/SESSION_ID/ ; "session": ROOT/SESSION_ID/ with the year taken from
# the session id by year_pattern.                                         (OFFSITE_ARCHIVE_LAYOUT)
layout = "year/session"
# A regular expression whose first match in the session id is its year (layout = "session").
year_pattern = "(19|20)\\\\d{2}"
# Notes backed up separately, in STANDARD class, under notes_key_template: patterns relative to
# the session directory and to its parent; {session} is the session id.
notes = ["{session}*.md"]

[upload]
# Object key of each archive: {year}, {session}. ".gz" / ".age" are appended when compressed or
# encrypted.
key_template = "backups/raw/{year}/{session}.tar"
notes_key_template = "sessions/{year}/{file}"
# STANDARD, STANDARD_IA, GLACIER_IR, GLACIER, DEEP_ARCHIVE...      (OFFSITE_ARCHIVE_STORAGE_CLASS)
# Or keep STANDARD and let lifecycle rules (below) move tagged archives.
storage_class = "STANDARD"
# "none" (tar as is, restorable with tar -xf) or "gzip".               (OFFSITE_ARCHIVE_COMPRESS)
compress = "none"
# Tags on every archive; lifecycle rules match on them.
tags = { backup = "deep-archive" }
# Multipart parts uploaded in parallel, and their size. Memory ~ concurrency x part size.
concurrency = 4                                                    # (OFFSITE_ARCHIVE_CONCURRENCY)
part_size_mib = 8
# Bandwidth limit, e.g. "20M" (MiB/s), "500K"; empty = none.              (OFFSITE_ARCHIVE_BWLIMIT)
bwlimit = ""

[encryption]
# age recipients (public keys): archives are encrypted so that "age -d -i key.txt" restores them.
recipients = []                                                     # (OFFSITE_ARCHIVE_RECIPIENTS)
# Or a passphrase, read from this environment variable (default ${PASSPHRASE_ENV}).
passphrase_env = ""
# The age identity (private key) file used to decrypt on verify --full and restore.
identity_file = ""                                               # (OFFSITE_ARCHIVE_IDENTITY_FILE)
# The manifest key: signs every manifest on upload, so a restore from the bucket alone (after
# "catalog rebuild") can tell the manifests Offsite wrote from ones someone else put there.
# Created (0600) on the first upload; keep a copy with your age identity. Empty = the key
# shared by every Offsite feature: $${MANIFEST_KEY_ENV}, else ~/.config/offsite/manifest.key.
manifest_key_file = ""                                       # (OFFSITE_ARCHIVE_MANIFEST_KEY_FILE)

[catalog]
# The SQLite catalog; "offsite archive catalog rebuild" recreates it from the bucket.
path = ".offsite/archive-catalog.db"                                    # (OFFSITE_ARCHIVE_CATALOG)

[lifecycle]
# Rules for "offsite policy lifecycle": objects tagged TAG move to STORAGE_CLASS after DAYS.
# Unset = the defaults (archive=fast|normal|delayed, backup=deep-archive).
# rules = [
#   { tag = "backup=deep-archive", storage_class = "DEEP_ARCHIVE", days = 0 },
# ]
`;
}
