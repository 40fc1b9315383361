// `offsite archive init-config | analyze | list-sessions | status | upload --dry-run` and
// `offsite policy lifecycle | iam`, as a user runs them, on a local directory bucket (the
// archive engine itself is tested against RGW in test/backup/).
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it, before } from 'node:test';
import { parse as parseToml } from 'smol-toml';
import { runCli } from '../support/cli.js';
import { tempDir } from '../support/env.js';
import { makeSessions } from '../backup/fixtures.js';

// Upload creates the manifest key: in a temp directory, not in the user's ~/.config.
process.env.OFFSITE_MANIFEST_KEY_FILE = path.join(await tempDir('offsite-manifest-key-'), 'manifest.key');

describe('offsite archive (CLI)', () => {
  let dir: string;
  const cfg = () => ['archive', '--config', path.join(dir, 'offsite-archive.toml')];
  before(async () => {
    dir = await tempDir('offsite-cli-archive-');
    await makeSessions(path.join(dir, 'sessions'), [
      { year: 2022, id: 'N1', bigBytes: 1024 * 1024 },
      { year: 2023, id: 'N2', bigBytes: 2 * 1024 * 1024 },
      { year: 2023, id: 'N3', bigBytes: 1024 * 1024 },
    ]);
  });

  it('init-config writes a commented TOML that loads, and refuses to overwrite', async () => {
    const r = await runCli(['archive', '--url', './bucket', '--root', './sessions', 'init-config'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const text = await readFile(path.join(dir, 'offsite-archive.toml'), 'utf8');
    assert.match(text, /^# Offsite archive configuration/);
    assert.match(text, /OFFSITE_ARCHIVE_URL/);
    const parsed = parseToml(text) as { destination: { url: string }; sessions: { root: string } };
    assert.equal(parsed.destination.url, './bucket');
    assert.equal(parsed.sessions.root, './sessions');
    const again = await runCli(['archive', 'init-config'], { cwd: dir });
    assert.equal(again.code, 2);
    assert.match(again.stderr, /--force/);
  });

  it('a bad config value names the field and the fix', async () => {
    const bad = path.join(dir, 'bad.toml');
    await writeFile(bad, '[destination]\nurl = "./b"\n[sessions]\nroot = "./sessions"\n[upload]\ncompress = "lzma"\n');
    const r = await runCli(['archive', '--config', bad, 'list-sessions'], { cwd: dir });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /upload\.compress/);
    assert.match(r.stderr, /OFFSITE_ARCHIVE_COMPRESS/);
    const missing = path.join(dir, 'missing.toml');
    await writeFile(missing, '[sessions]\nroot = "./sessions"\n');
    const m = await runCli(['archive', '--config', missing, 'list-sessions'], { cwd: dir });
    assert.equal(m.code, 2);
    assert.match(m.stderr, /destination.*(required|url)/);
  });

  it('analyze, list-sessions, dry run, upload, status', async () => {
    const list = JSON.parse((await runCli(['--json', ...cfg(), 'list-sessions'], { cwd: dir })).stdout) as Array<{ sessionId: string; year: number; archived: boolean }>;
    assert.deepEqual(list.map((s) => [s.year, s.sessionId, s.archived]), [[2022, 'N1', false], [2023, 'N2', false], [2023, 'N3', false]]);

    const a = await runCli(['--json', ...cfg(), 'analyze'], { cwd: dir });
    assert.equal(a.code, 0, a.stderr);
    const analysis = JSON.parse(a.stdout) as { years: Array<{ year: number; sessions: number }>; throughput: { source: string }; estimateSeconds: number };
    assert.deepEqual(analysis.years.map((y) => [y.year, y.sessions]), [[2022, 1], [2023, 2]]);
    assert.equal(analysis.throughput.source, 'probe', 'no earlier run: a probe upload measured the rate');
    assert.ok(analysis.estimateSeconds > 0);

    const dry = await runCli([...cfg(), 'upload', '--dry-run', '--year', '2023'], { cwd: dir });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /upload\s+N2 \(2023\)/);
    assert.doesNotMatch(dry.stdout, /N1/);
    assert.deepEqual(JSON.parse((await runCli(['--json', ...cfg(), 'list-sessions', '--not-backed-up'], { cwd: dir })).stdout).length, 3, 'a dry run uploads nothing');

    const up = await runCli([...cfg(), 'upload', '--limit', '2'], { cwd: dir });
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stderr, /upload finished: 2 ok, 1 skipped, 0 failed/);
    const pending = JSON.parse((await runCli(['--json', ...cfg(), 'list-sessions', '--not-backed-up'], { cwd: dir })).stdout) as Array<{ sessionId: string }>;
    assert.deepEqual(pending.map((s) => s.sessionId), ['N3']);

    const json = await runCli(['--json', ...cfg(), 'upload'], { cwd: dir });
    const events = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; sessionId?: string });
    assert.ok(events.some((e) => e.type === 'session-start' && e.sessionId === 'N3'));
    assert.ok(events.some((e) => e.type === 'progress'));
    assert.equal(events.at(-1)!.type, 'result');

    const status = JSON.parse((await runCli(['--json', ...cfg(), 'status'], { cwd: dir })).stdout) as { totals: Array<{ year: number; done: number }>; runs: Array<{ kind: string; status: string }> };
    assert.deepEqual(status.totals.map((t) => [t.year, t.done]), [[2022, 1], [2023, 2]]);
    assert.ok(status.runs.some((r) => r.kind === 'upload' && r.status === 'ok'));
    const analyzed = JSON.parse((await runCli(['--json', ...cfg(), 'analyze'], { cwd: dir })).stdout) as { throughput: { source: string }; total: { pendingSessions: number } };
    assert.equal(analyzed.total.pendingSessions, 0);
    assert.equal(analyzed.throughput.source, 'measured', 'the rate now comes from the runs');
  });

  it('restore or verify of a session the catalog has not archived: exit 3, naming it', async () => {
    for (const cmd of [['restore', '--session-id', 'NOPE', '--to', path.join(dir, 'r')], ['verify', '--session-id', 'NOPE']]) {
      const r = await runCli([...cfg(), ...cmd], { cwd: dir });
      assert.equal(r.code, 3, `${cmd[0]}: ${r.stderr}`);
      assert.match(r.stderr, /^offsite: no archived session "NOPE" in the catalog/);
    }
  });

  it('policy lifecycle prints the default rules; policy iam refuses a local destination', async () => {
    const r = await runCli(['policy', '--url', 's3://archive-bucket/observatory', 'lifecycle']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { Rules: Array<{ ID: string; Transitions?: Array<{ StorageClass: string }> }> };
    const classes = doc.Rules.flatMap((x) => x.Transitions?.map((t) => t.StorageClass) ?? []);
    assert.deepEqual([...new Set(classes)].sort(), ['DEEP_ARCHIVE', 'GLACIER', 'GLACIER_IR']);
    assert.ok(doc.Rules.some((x) => JSON.stringify(x).includes('AbortIncompleteMultipartUpload')));
    const iam = await runCli(['policy', '--url', 's3://archive-bucket/observatory', 'iam']);
    assert.equal(iam.code, 0, iam.stderr);
    const policy = JSON.parse(iam.stdout) as { Statement: Array<{ Resource: string[] }> };
    assert.ok(policy.Statement.every((s) => s.Resource.every((res) => res.startsWith('arn:aws:s3:::archive-bucket'))));
    assert.ok(JSON.stringify(policy).includes('arn:aws:s3:::archive-bucket/observatory/*'));
    const local = await runCli(['policy', '--url', './bucket', 'iam'], { cwd: dir });
    assert.equal(local.code, 2);
    assert.match(local.stderr, /S3 buckets/);
  });
});
