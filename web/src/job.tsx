// A job's Backups tab: its backups (local, in S3 or both), Create Backup with live progress
// from the event stream, Restore (downloads first when S3 only) and Delete.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { CloudIcon, ConfirmDialog, LocalIcon, ProgressBar, Status, StatusDot, type Message } from './components.js';
import { watchRun } from './events.js';
import { formatBytes, formatDate, formatSchedule } from './format.js';
import type { Backup, Job, Run, Where } from './types.js';

type Pending = { action: 'restore'; backup: Backup } | { action: 'delete'; backup: Backup; where: Where } | null;

const verifiedBy: Record<string, string> = { catalog: 'the catalog', 'manifest-key': 'the manifest key (MAC)' };

const whereWords: Record<Where, string> = { local: 'the local copy', s3: 'the copy in S3', both: 'both copies' };

function progressOf(run: Run): { value: number; text: string } {
  if (run.status === 'ok') return { value: 100, text: `${run.kind === 'backup' ? 'Backup' : 'Restore'} done` };
  if (run.status === 'failed') return { value: 100, text: `Failed: ${run.error?.message ?? 'unknown error'}` };
  const pct = run.bytes_total ? (run.bytes_done / run.bytes_total) * 100 : 0;
  if (!run.bytes_done && !run.bytes_total) return { value: 0, text: `${run.phase}…` };
  const bytes = run.bytes_total ? `${formatBytes(run.bytes_done)} of ${formatBytes(run.bytes_total)}` : formatBytes(run.bytes_done);
  return { value: pct, text: `${run.phase}: ${bytes}` };
}

export function JobView(props: { name: string }) {
  const { name } = props;
  const [job, setJob] = useState<Job | null>(null);
  const [backups, setBackups] = useState<Backup[] | null>(null);
  const [listedAt, setListedAt] = useState<string | null>(null);
  const [staleAfter, setStaleAfter] = useState(0);
  const [bucketError, setBucketError] = useState<{ code: string; message: string } | null>(null);
  const [message, setMessage] = useState<Message | null>(null);
  const [run, setRun] = useState<Run | null>(null);
  const [restored, setRestored] = useState<{ to: string; sha256: string; from: string } | null>(null);
  const [pending, setPending] = useState<Pending>(null);
  const [busy, setBusy] = useState(false);
  const [upload, setUpload] = useState(true);

  const reload = useCallback(async () => {
    try {
      const [j, b] = await Promise.all([api.job(name), api.backups(name)]);
      setJob(j);
      setBackups(b.backups);
      setListedAt(b.listed_at);
      setStaleAfter(b.stale_after_seconds);
      setBucketError(b.bucket_error ?? null);
    } catch (e) {
      setMessage({ kind: 'error', text: `Could not load ${name}: ${(e as Error).message}` });
    }
  }, [name]);

  useEffect(() => {
    void reload();
  }, [reload]);

  async function follow(runId: string, kind: Run['kind']): Promise<Run> {
    // The run has started (202): show the bar at once, the events then move it.
    setRun({ id: runId, job: name, kind, trigger: 'manual', status: 'running', started_at: null, finished_at: null, phase: 'snapshot', bytes_done: 0, bytes_total: null, backup: null, uploaded: false, error: null, result: null });
    const final = await watchRun(runId, api.run, setRun);
    await reload();
    return final;
  }

  async function createBackup() {
    setBusy(true);
    setRestored(null);
    setMessage({ kind: 'info', text: 'Backup started…' });
    try {
      const { run_id } = await api.backup(name, job?.destination ? upload : undefined);
      const r = await follow(run_id, 'backup');
      if (r.status === 'ok') setMessage({ kind: 'ok', text: `Backup ${r.backup ?? ''} done${r.uploaded ? ', uploaded to S3' : ', kept locally (not uploaded)'}.` });
      else setMessage({ kind: 'error', text: `Backup failed: ${r.error ? `${r.error.code}: ${r.error.message}` : 'unknown error'}` });
    } catch (e) {
      setMessage({ kind: 'error', text: `Backup not started: ${(e as Error).message}` });
    } finally {
      setBusy(false);
    }
  }

  async function restore(b: Backup) {
    setBusy(true);
    setRestored(null);
    setMessage({ kind: 'info', text: `Restoring ${b.name}${b.where === 's3' ? ' (downloading from S3 first)' : ''}…` });
    try {
      const { run_id } = await api.restore(name, b.name);
      const r = await follow(run_id, 'restore');
      const res = r.result as { to?: string; sha256?: string; from?: string; verified_by?: string } | null;
      if (r.status === 'ok' && res?.to) {
        setRestored({ to: res.to, sha256: res.sha256 ?? '', from: res.from ?? '' });
        setMessage({ kind: 'ok', text: `Restored ${b.name}${res.verified_by ? `, checked against ${verifiedBy[res.verified_by] ?? res.verified_by}` : ''}.` });
      } else setMessage({ kind: 'error', text: `Restore failed: ${r.error ? `${r.error.code}: ${r.error.message}` : 'unknown error'}` });
    } catch (e) {
      setMessage({ kind: 'error', text: `Restore not started: ${(e as Error).message}` });
    } finally {
      setBusy(false);
    }
  }

  async function remove(b: Backup, where: Where) {
    setBusy(true);
    try {
      const r = await api.deleteBackup(name, b.name, where);
      const gone = [r.deleted.local && 'local copy', r.deleted.s3 && 'S3 copy'].filter(Boolean).join(' and ');
      setMessage({ kind: 'ok', text: `Deleted the ${gone || 'nothing'} of ${b.name}.` });
      await reload();
    } catch (e) {
      setMessage({ kind: 'error', text: `Not deleted: ${(e as Error).message}` });
    } finally {
      setBusy(false);
    }
  }

  function confirm() {
    const p = pending;
    setPending(null);
    if (!p) return;
    if (p.action === 'restore') void restore(p.backup);
    else void remove(p.backup, p.where);
  }

  const progress = run ? progressOf(run) : null;

  return (
    <main>
      <p class="crumbs">
        <a href="#/jobs">Jobs</a> / {name}
      </p>
      <h1>
        {name} {job && <StatusDot status={job.status} />}
      </h1>
      {job && (
        <dl class="facts card">
          <dt>Source</dt>
          <dd>
            <span class="kind">{job.source_kind}</span> <span class="mono">{job.source}</span>
          </dd>
          <dt>Destination</dt>
          <dd class={job.destination ? 'mono' : undefined}>{job.destination ? `${job.destination}${job.destination_from === 'settings' ? ' (from the settings)' : ''}` : 'none: local copies only'}</dd>
          <dt>Schedule</dt>
          <dd>{formatSchedule(job.schedule)}</dd>
          <dt>Last success</dt>
          <dd>{formatDate(job.last_success)}</dd>
          <dt>Next run</dt>
          <dd>{formatDate(job.next_run)}</dd>
        </dl>
      )}
      <section>
        <div class="toolbar">
          <h2>Backups</h2>
          <div class="toolbar-actions">
            {job?.destination && (
              <span class="check">
                <input id="upload-to-s3" name="upload_to_s3" type="checkbox" checked={upload} onChange={(e) => setUpload(e.currentTarget.checked)} />
                <label for="upload-to-s3">Upload to S3</label>
              </span>
            )}
            <button type="button" class="primary" onClick={createBackup} disabled={busy || job?.running}>
              Create Backup
            </button>
          </div>
        </div>
        {progress && <ProgressBar value={progress.value} label={`${run?.kind ?? 'run'} progress`} text={progress.text} />}
        <Status message={message} testid="job-status" />
        {bucketError && (
          <p class="card warn-box" role="alert" data-testid="bucket-error">
            The bucket could not be listed ({bucketError.code}): {bucketError.message}. Only local copies (and what was listed before) are shown.
          </p>
        )}
        {restored && (
          <div class="card result" data-testid="restore-result">
            <p>
              Restored to <code data-testid="restored-path">{restored.to}</code>
              {restored.from && ` (from ${restored.from === 's3' ? 'S3' : 'the local copy'})`}
            </p>
            <p class="mono small">sha256 {restored.sha256}</p>
          </div>
        )}
        {backups && backups.length === 0 && <p class="card">No backups yet.</p>}
        {backups && backups.length > 0 && (
          <table class="table responsive backups">
            <thead>
              <tr>
                <th scope="col">Date</th>
                <th scope="col">Size</th>
                <th scope="col">Location</th>
                <th scope="col">Name</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {backups.map((b) => (
                <tr key={b.name} data-testid={`backup-row-${b.name}`} data-where={b.where}>
                  <td data-label="Date" class="nowrap">{formatDate(b.taken_at)}</td>
                  <td data-label="Size" class="nowrap">{formatBytes(b.size)}</td>
                  <td data-label="Location" class="where">
                    <span class="where-icons">
                      {(b.where === 'local' || b.where === 'both') && <LocalIcon />}
                      {(b.where === 's3' || b.where === 'both') && <CloudIcon />}
                      {b.where === 's3' && <span class="badge warn">S3 only</span>}
                    </span>
                  </td>
                  <td data-label="Name" class="mono small backup-name">
                    {b.name}
                  </td>
                  <td>
                    <div class="row-actions">
                    <button type="button" disabled={busy} onClick={() => setPending({ action: 'restore', backup: b })}>
                      Restore
                    </button>
                    {b.where !== 's3' && (
                      <button type="button" disabled={busy} onClick={() => setPending({ action: 'delete', backup: b, where: 'local' })}>
                        Delete local
                      </button>
                    )}
                    {b.where !== 'local' && (
                      <button type="button" disabled={busy} onClick={() => setPending({ action: 'delete', backup: b, where: 's3' })}>
                        Delete from S3
                      </button>
                    )}
                    {b.where === 'both' && (
                      <button type="button" class="danger" disabled={busy} onClick={() => setPending({ action: 'delete', backup: b, where: 'both' })}>
                        Delete both
                      </button>
                    )}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {listedAt && job?.destination && (
          <p class="hint">
            Bucket listed at {formatDate(listedAt)}: changes made here show at once, others' within {staleAfter} s.
          </p>
        )}
      </section>
      <ConfirmDialog
        open={pending !== null}
        title={pending?.action === 'restore' ? `Restore ${pending.backup.name}?` : `Delete ${pending ? whereWords[pending.where] : ''}?`}
        confirmLabel={pending?.action === 'restore' ? 'Restore' : 'Delete'}
        danger={pending?.action === 'delete'}
        onConfirm={confirm}
        onCancel={() => setPending(null)}
      >
        {pending?.action === 'restore' && (
          <p>
            The backup is checked against the catalog and written to the console's restore directory{pending.backup.where === 's3' ? ', after downloading it from S3 (kept as the local copy)' : ''}. The job's source is not touched.
          </p>
        )}
        {pending?.action === 'delete' && (
          <p>
            {pending.backup.name}: {whereWords[pending.where]} will be deleted. This cannot be undone.
          </p>
        )}
      </ConfirmDialog>
    </main>
  );
}
