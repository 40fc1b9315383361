// Settings: the one S3 configuration every job without its own destination uploads to.
// The secret is write-only: the field starts empty, is sent only when typed, and is emptied
// after a save, so it never stays in the page.
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from './api.js';
import { ConfirmDialog, Status, type Message } from './components.js';
import { formatDate } from './format.js';
import type { S3Settings, S3SettingsInput, TestResult } from './types.js';

interface Form {
  endpoint: string;
  bucket: string;
  region: string;
  access_key_id: string;
  secret_access_key: string;
  prefix: string;
  path_style: boolean;
}

const empty: Form = { endpoint: '', bucket: '', region: '', access_key_id: '', secret_access_key: '', prefix: '', path_style: true };

function fromSettings(s: S3Settings): Form {
  if (!s.configured) return { ...empty };
  return {
    endpoint: s.endpoint ?? '',
    bucket: s.bucket ?? '',
    region: s.region ?? '',
    access_key_id: s.access_key_id ?? '',
    secret_access_key: '',
    prefix: s.prefix ?? '',
    path_style: s.path_style ?? false,
  };
}

/** The body for PUT and for test: empty optional fields left out; an empty secret = keep the stored one. */
function toInput(f: Form): S3SettingsInput {
  const body: S3SettingsInput = { bucket: f.bucket.trim(), access_key_id: f.access_key_id.trim(), path_style: f.path_style };
  if (f.endpoint.trim()) body.endpoint = f.endpoint.trim();
  if (f.region.trim()) body.region = f.region.trim();
  if (f.prefix.trim()) body.prefix = f.prefix.trim();
  if (f.secret_access_key) body.secret_access_key = f.secret_access_key;
  return body;
}

const statusWord = { pass: 'pass', warn: 'warning', fail: 'fail', skip: 'skipped' } as const;

export function Settings() {
  const [saved, setSaved] = useState<S3Settings | null>(null);
  const [form, setForm] = useState<Form>(empty);
  const [message, setMessage] = useState<Message | null>(null);
  const [test, setTest] = useState<TestResult | null>(null);
  const [busy, setBusy] = useState<'' | 'test' | 'save' | 'delete'>('');
  const [confirmDelete, setConfirmDelete] = useState(false);

  useEffect(() => {
    api.getSettings().then(
      (s) => {
        setSaved(s);
        setForm(fromSettings(s));
      },
      (e: Error) => setMessage({ kind: 'error', text: `Could not load the settings: ${e.message}` }),
    );
  }, []);

  const set = (k: keyof Form) => (e: Event) => {
    const t = e.currentTarget as HTMLInputElement;
    setForm((f) => ({ ...f, [k]: t.type === 'checkbox' ? t.checked : t.value }));
  };

  async function runTest() {
    setBusy('test');
    setTest(null);
    setMessage({ kind: 'info', text: 'Testing the connection…' });
    try {
      const r = await api.testSettings(toInput(form));
      setTest(r);
      const failed = r.checks.filter((c) => c.status === 'fail');
      if (r.ok && failed.length === 0) setMessage({ kind: 'ok', text: `Connection OK: every check passed (${r.url}).` });
      else setMessage({ kind: 'error', text: `Connection failed: ${failed.map((c) => `${c.title}: ${c.detail}`).join('; ') || 'see the checks below'}` });
    } catch (e) {
      setMessage({ kind: 'error', text: `Test failed: ${(e as Error).message}` });
    } finally {
      setBusy('');
    }
  }

  async function save(e: Event) {
    e.preventDefault();
    setBusy('save');
    try {
      const s = await api.saveSettings(toInput(form));
      setSaved(s);
      setForm(fromSettings(s));
      setMessage({ kind: 'ok', text: `Saved${s.updated_at ? ` at ${formatDate(s.updated_at)}` : ''}. Jobs without their own destination now upload to this bucket.` });
    } catch (err) {
      setMessage({ kind: 'error', text: `Not saved: ${err instanceof ApiError ? `${err.message}` : String(err)}` });
    } finally {
      setBusy('');
    }
  }

  async function remove() {
    setConfirmDelete(false);
    setBusy('delete');
    try {
      const s = await api.deleteSettings();
      setSaved(s);
      setForm({ ...empty });
      setTest(null);
      setMessage({ kind: 'ok', text: 'S3 settings deleted. Backups of jobs without their own destination stay local.' });
    } catch (e) {
      setMessage({ kind: 'error', text: `Not deleted: ${(e as Error).message}` });
    } finally {
      setBusy('');
    }
  }

  const secretSet = saved?.secret_set ?? false;

  return (
    <main>
      <h1>Settings</h1>
      <section class="card">
        <h2>S3 storage</h2>
        <p class="hint">{saved?.configured ? `Configured${saved.updated_at ? `, last changed ${formatDate(saved.updated_at)}` : ''}.` : 'Not configured: backups are kept locally only.'}</p>
        {/* Disabled until the stored values are in, so nothing typed is overwritten by them. */}
        <form onSubmit={save} class="form" aria-busy={saved === null}>
          <fieldset class="contents" disabled={saved === null}>
          <label for="s3-endpoint">Endpoint URL</label>
          <input id="s3-endpoint" name="endpoint" type="url" placeholder="empty = AWS; e.g. https://minio.example.net" value={form.endpoint} onInput={set('endpoint')} />
          <label for="s3-bucket">Bucket</label>
          <input id="s3-bucket" name="bucket" required value={form.bucket} onInput={set('bucket')} />
          <label for="s3-region">Region</label>
          <input id="s3-region" name="region" placeholder="us-east-1" value={form.region} onInput={set('region')} />
          <label for="s3-access-key">Access key ID</label>
          <input id="s3-access-key" name="access_key_id" required autocomplete="off" spellcheck={false} value={form.access_key_id} onInput={set('access_key_id')} />
          <label for="s3-secret">
            Secret access key{' '}
            {secretSet && (
              <span class="badge ok" data-testid="secret-set">
                Secret set
              </span>
            )}
          </label>
          <input
            id="s3-secret"
            name="secret_access_key"
            type="password"
            autocomplete="new-password"
            spellcheck={false}
            placeholder={secretSet ? 'set — leave empty to keep' : ''}
            value={form.secret_access_key}
            onInput={set('secret_access_key')}
          />
          <label for="s3-prefix">Path prefix</label>
          <input id="s3-prefix" name="prefix" placeholder="backups/" value={form.prefix} onInput={set('prefix')} />
          <div class="check">
            <input id="s3-path-style" name="path_style" type="checkbox" checked={form.path_style} onChange={set('path_style')} />
            <label for="s3-path-style">Path-style addressing (MinIO, Ceph and most self-hosted servers)</label>
          </div>
          <div class="actions">
            <button type="button" onClick={runTest} disabled={busy !== ''}>
              Test Connection
            </button>
            <button type="submit" class="primary" disabled={busy !== ''}>
              Save
            </button>
            <button type="button" class="danger" onClick={() => setConfirmDelete(true)} disabled={busy !== '' || !saved?.configured}>
              Delete
            </button>
          </div>
          </fieldset>
        </form>
        <Status message={message} testid="settings-status" />
        {test && (
          <ul class="checks" aria-label="Connection checks">
            {test.checks.map((c) => (
              <li key={c.id} data-testid={`check-${c.id}`} data-status={c.status} class={`check-row ${c.status}`}>
                <span class={`badge ${c.status}`}>{statusWord[c.status]}</span>
                <span class="check-title">{c.title}</span>
                <span class="check-detail">{c.detail}</span>
              </li>
            ))}
          </ul>
        )}
      </section>
      <ConfirmDialog open={confirmDelete} title="Delete the S3 settings?" confirmLabel="Delete settings" danger onConfirm={remove} onCancel={() => setConfirmDelete(false)}>
        <p>The stored endpoint, keys and bucket are removed. Backups already in the bucket stay there; new backups of jobs without their own destination stay local.</p>
      </ConfirmDialog>
    </main>
  );
}
