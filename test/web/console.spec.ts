// The console's page in a real browser (Debian's chromium) against a real `offsite console`
// process and the suite's RGW: no request is mocked. Each test starts its own console.
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { expect, test, type Page, type Response } from '@playwright/test';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { adminClient, createTestBucket, s3TestServer, tempDir } from '../support/env.js';
import { startConsole, type ConsoleProcess } from './console.js';
import { ARCHIVE_SESSIONS, makeArchiveCatalog, makeSyncAccount } from './fixtures.js';
import { checkPrefixOfWrites, makeDatabase, maxId, startWriter } from '../support/sqlite-writer.js';

/** Page script: records each aria-valuenow/valuetext of the progress bar into window.__progress. */
const RECORD_PROGRESS = `(() => {
  window.__progress = [];
  const note = (el) => window.__progress.push({ now: el.getAttribute('aria-valuenow'), text: el.getAttribute('aria-valuetext') });
  new MutationObserver((records) => {
    for (const r of records) {
      const els = r.type === 'attributes' ? [r.target] : [...r.addedNodes].flatMap((n) => (n.querySelectorAll ? [...(n.matches('[role=progressbar]') ? [n] : []), ...n.querySelectorAll('[role=progressbar]')] : []));
      for (const el of els) if (el.getAttribute && el.getAttribute('role') === 'progressbar') note(el);
    }
  }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['aria-valuenow', 'aria-valuetext'] });
})()`;

let consoles: ConsoleProcess[] = [];
// Script errors and Content-Security-Policy refusals (helmet's CSP is 'self') fail the test.
let pageProblems: string[] = [];
test.beforeEach(({ page }) => {
  pageProblems = [];
  page.on('pageerror', (e) => pageProblems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) pageProblems.push(`console: ${m.text()}`);
  });
});
test.afterEach(async () => {
  await Promise.all(consoles.map((c) => c.stop()));
  consoles = [];
  expect(pageProblems).toEqual([]);
});

async function launch(config = ''): Promise<ConsoleProcess> {
  const c = await startConsole({ config });
  consoles.push(c);
  return c;
}

/** Every answer the page gets (headers and body, raw), the event stream aside (it never ends). */
function collectResponses(page: Page): Buffer[] {
  const answers: Buffer[] = [];
  page.on('response', async (r: Response) => {
    const headers = await r.allHeaders().catch(() => ({}));
    answers.push(Buffer.from(JSON.stringify(headers)));
    if ((headers as Record<string, string>)['content-type']?.includes('text/event-stream')) return;
    const body = await r.body().catch(() => null);
    if (body) answers.push(body);
  });
  return answers;
}

async function logIn(page: Page, c: ConsoleProcess): Promise<void> {
  await page.goto(`${c.url}/#/login`);
  await page.getByLabel('Admin token').fill(c.token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByRole('heading', { name: 'Jobs', level: 1 })).toBeVisible();
}

async function fillS3(page: Page, bucket: string, secret: string): Promise<void> {
  const s3 = s3TestServer();
  await page.locator('input[name=endpoint]').fill(s3.endpoint);
  await page.locator('input[name=bucket]').fill(bucket);
  await page.locator('input[name=region]').fill('us-east-1');
  await page.locator('input[name=access_key_id]').fill(s3.accessKeyId);
  await page.locator('input[name=secret_access_key]').fill(secret);
  await page.locator('input[name=path_style]').check();
}

async function saveSettings(page: Page, bucket: string): Promise<void> {
  await page.getByRole('link', { name: 'Settings' }).click();
  await fillS3(page, bucket, s3TestServer().secretAccessKey);
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByTestId('settings-status')).toContainText('Saved');
  await expect(page.getByTestId('secret-set')).toBeVisible();
}

/** The secret in every form it could leak in: as typed, base64, hex. */
function secretForms(secret: string): Buffer[] {
  const b = Buffer.from(secret, 'utf8');
  return [b, Buffer.from(b.toString('base64').replace(/=+$/, '')), Buffer.from(b.toString('hex'))];
}

function assertNoSecret(where: string, bytes: Buffer, secret: string): void {
  for (const form of secretForms(secret)) expect(bytes.includes(form), `${where} holds the secret`).toBe(false);
}

async function bucketKeys(bucket: string): Promise<string[]> {
  const client = adminClient();
  try {
    const r = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    return (r.Contents ?? []).map((o) => o.Key ?? '');
  } finally {
    client.destroy();
  }
}

test('S3 settings: Test Connection passes with the right keys and names the credentials with a wrong secret; the saved secret never comes back', async ({ page }, info) => {
  const c = await launch();
  const bucket = await createTestBucket('web-settings');
  const secret = s3TestServer().secretAccessKey;
  const wrongSecret = `wrong-${randomBytes(12).toString('hex')}`;
  const answers = collectResponses(page);
  await logIn(page, c);
  await page.screenshot({ path: info.outputPath('jobs-empty.png') });

  await page.getByRole('link', { name: 'Settings' }).click();
  await expect(page.getByRole('heading', { name: 'Settings' })).toBeVisible();
  await expect(page.getByTestId('secret-set')).toHaveCount(0);

  // A wrong secret: the credentials check fails and the message names it.
  await fillS3(page, bucket, wrongSecret);
  await page.getByRole('button', { name: 'Test Connection' }).click();
  await expect(page.getByTestId('check-credentials')).toHaveAttribute('data-status', 'fail');
  await expect(page.getByTestId('settings-status')).toContainText(/credentials/i);
  await expect(page.getByTestId('settings-status')).toContainText('Connection failed');
  await page.screenshot({ path: info.outputPath('settings-test-failed.png'), fullPage: true });

  // The right secret: every check passes.
  await page.locator('input[name=secret_access_key]').fill(secret);
  await page.getByRole('button', { name: 'Test Connection' }).click();
  await expect(page.getByTestId('settings-status')).toContainText('every check passed');
  const rows = page.locator('[data-testid^=check-]');
  expect(await rows.count()).toBeGreaterThanOrEqual(6);
  for (const id of ['credentials', 'bucket', 'write', 'conditional']) await expect(page.getByTestId(`check-${id}`)).toHaveAttribute('data-status', 'pass');
  expect(await rows.evaluateAll((els) => els.map((e) => `${e.getAttribute('data-testid')}=${e.getAttribute('data-status')}`).filter((s) => !s.endsWith('=pass')))).toEqual([]);
  await page.screenshot({ path: info.outputPath('settings-test-passed.png'), fullPage: true });

  // Save: the field is emptied at once, and after a reload it is empty with the indicator.
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByTestId('settings-status')).toContainText('Saved');
  await expect(page.locator('input[name=secret_access_key]')).toHaveValue('');
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Settings' })).toBeVisible();
  await expect(page.getByTestId('secret-set')).toHaveText(/Secret set/);
  await expect(page.locator('input[name=bucket]')).toHaveValue(bucket);
  const secretInput = page.locator('input[name=secret_access_key]');
  await expect(secretInput).toHaveValue('');
  await expect(secretInput).toHaveAttribute('type', 'password');
  await expect(secretInput).toHaveAttribute('placeholder', 'set — leave empty to keep');
  assertNoSecret('the page HTML', Buffer.from(await page.content()), secret);

  // The stored settings work without the secret being sent again.
  await page.getByRole('button', { name: 'Test Connection' }).click();
  await expect(page.getByTestId('settings-status')).toContainText('every check passed');
  await page.screenshot({ path: info.outputPath('settings.png'), fullPage: true });

  // No byte of either secret in the database files (console.db, -wal, -shm: while the server
  // runs, and after it closed them), the server's output, or any answer.
  const dbFiles = async () => {
    const names = readdirSync(c.dataDir).filter((n) => /^console\.db/.test(n));
    for (const name of names) {
      const bytes = await readFile(path.join(c.dataDir, name));
      assertNoSecret(name, bytes, secret);
      assertNoSecret(name, bytes, wrongSecret);
    }
    return names;
  };
  expect(await dbFiles()).toContain('console.db-wal');
  await c.stop();
  expect(await dbFiles()).toContain('console.db');
  expect(existsSync(path.join(c.dataDir, 'console.db'))).toBe(true);
  expect(c.logs().toString()).toContain('"url":"/api/settings/s3"');
  assertNoSecret('the console logs', c.logs(), secret);
  assertNoSecret('the console logs', c.logs(), wrongSecret);
  expect(answers.length).toBeGreaterThan(5);
  const all = Buffer.concat(answers);
  assertNoSecret('the API answers', all, secret);
  assertNoSecret('the API answers', all, wrongSecret);
});

test('a SQLite job with a writer running: backup to both, delete local → S3 only, restore checks out; settings deleted → local only', async ({ page }, info) => {
  test.setTimeout(180_000);
  const bucket = await createTestBucket('web-jobs');
  const dir = await tempDir('offsite-web-job-');
  const dbFile = path.join(dir, 'app.db');
  makeDatabase(dbFile, 40_000);
  const writer = await startWriter(dbFile);
  try {
    const c = await startConsole({ dir, config: `[jobs.app]\nsource = "sqlite:app.db"\nschedule = "24h"\n` });
    consoles.push(c);
    // Every state-changing request of the page carries the CSRF token (the login gets it).
    const changes: string[] = [];
    page.on('request', (r) => {
      if (r.method() === 'GET' || !r.url().includes('/api/') || r.url().endsWith('/api/login')) return;
      changes.push(`${r.method()} ${new URL(r.url()).pathname} ${r.headers()['x-csrf-token'] ? 'csrf' : 'NO CSRF'}`);
    });
    await logIn(page, c);
    await saveSettings(page, bucket);

    await page.getByRole('link', { name: 'Jobs' }).click();
    const row = page.getByTestId('job-row-app');
    await expect(row).toBeVisible();
    await expect(row.locator('[data-status]')).toHaveAttribute('data-status', 'never');
    await row.getByRole('link', { name: 'app' }).click();
    await expect(page.getByRole('heading', { name: 'app', level: 1 })).toBeVisible();

    // Create Backup: the progress bar appears and ends at 100; the backup is listed as both.
    const rowsBefore = maxId(dbFile);
    // Every value the progress bar shows, as the page renders it (the run is fast: poll nothing).
    await page.evaluate(RECORD_PROGRESS);
    await page.getByRole('button', { name: 'Create Backup' }).click();
    const bar = page.getByRole('progressbar');
    await expect(bar).toBeVisible();
    await expect(page.getByTestId('job-status')).toContainText('uploaded to S3', { timeout: 60_000 });
    await expect(bar).toHaveAttribute('aria-valuenow', '100');
    const seen = await page.evaluate<Array<{ now: string; text: string }>>('window.__progress');
    expect(seen.some((p) => Number(p.now) < 100), `the bar showed the run before its end: ${JSON.stringify(seen)}`).toBe(true);
    expect(seen.at(-1)?.text).toBe('Backup done');
    info.annotations.push({ type: 'progress', description: seen.map((p) => `${p.now}% ${p.text}`).join(' | ') });
    const both = page.locator('[data-testid^=backup-row-]');
    await expect(both).toHaveCount(1);
    await expect(both.first()).toHaveAttribute('data-where', 'both');
    await expect(both.first().getByRole('img', { name: 'local copy' })).toBeVisible();
    await expect(both.first().getByRole('img', { name: 'in S3' })).toBeVisible();
    const backupName = ((await both.first().getAttribute('data-testid')) ?? '').replace(/^backup-row-/, '');
    expect(backupName).toMatch(/^app-/);
    expect((await bucketKeys(bucket)).some((k) => k.endsWith(backupName))).toBe(true);
    await page.screenshot({ path: info.outputPath('job-backups.png'), fullPage: true });

    // Delete local: the row says S3 only, and the local file is gone.
    const backupRow = page.getByTestId(`backup-row-${backupName}`);
    // The dialog by keyboard: the focus moves into it, Escape cancels, Enter on its button confirms.
    await backupRow.getByRole('button', { name: 'Delete local' }).click();
    const dialog = page.getByRole('dialog');
    await expect(dialog).toBeVisible();
    expect(await page.evaluate<boolean>("document.querySelector('dialog[open]')?.contains(document.activeElement) === true")).toBe(true);
    await page.keyboard.press('Escape');
    await expect(dialog).toBeHidden();
    await expect(backupRow).toHaveAttribute('data-where', 'both');
    await backupRow.getByRole('button', { name: 'Delete local' }).click();
    await expect(dialog).toBeVisible();
    await dialog.getByRole('button', { name: 'Delete', exact: true }).focus();
    await page.keyboard.press('Enter');
    await expect(backupRow).toHaveAttribute('data-where', 's3');
    await expect(backupRow.getByText('S3 only')).toBeVisible();
    await expect(backupRow.getByRole('img', { name: 'local copy' })).toHaveCount(0);
    await expect(backupRow.getByRole('img', { name: 'in S3' })).toBeVisible();
    await page.screenshot({ path: info.outputPath('job-s3-only.png'), fullPage: true });

    // Restore (downloads first): the restored database is whole and a prefix of the writes.
    await backupRow.getByRole('button', { name: 'Restore' }).click();
    await expect(dialog).toBeVisible();
    await dialog.getByRole('button', { name: 'Restore' }).click();
    const restoredPath = page.getByTestId('restored-path');
    await expect(restoredPath).toBeVisible({ timeout: 60_000 });
    const restored = (await restoredPath.textContent()) ?? '';
    expect(path.isAbsolute(restored)).toBe(true);
    const check = checkPrefixOfWrites(restored);
    expect(check.integrity).toBe('ok');
    expect(check.n, 'ids 1..n, no gap').toBe(check.max);
    expect(check.n).toBeGreaterThanOrEqual(rowsBefore);
    expect(check.n).toBeLessThanOrEqual(maxId(dbFile));
    expect(check.payloadsOk).toBe(true);
    await expect(page.getByTestId('restore-result')).toContainText(/sha256 [0-9a-f]{64}/);
    await expect(page.getByTestId('restore-result')).toContainText('(from S3)');
    // The catalog still knows the S3-only backup (a local delete keeps its record): checked by it.
    await expect(page.getByTestId('job-status')).toContainText('checked against the catalog');
    await page.screenshot({ path: info.outputPath('job-restored.png'), fullPage: true });

    // A second backup, cleaned up locally at once: S3 only beside the restored one.
    await page.getByRole('button', { name: 'Create Backup' }).click();
    await expect(page.getByTestId('job-status')).toContainText('uploaded to S3', { timeout: 60_000 });
    await expect(page.locator('[data-testid^=backup-row-]')).toHaveCount(2);
    const second = page.locator('[data-testid^=backup-row-]').first();
    await second.getByRole('button', { name: 'Delete local' }).click();
    await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
    await expect(second).toHaveAttribute('data-where', 's3');

    // A third with "Upload to S3" unticked: local only. The README's picture: one in each state.
    await page.getByLabel('Upload to S3').uncheck();
    await page.getByRole('button', { name: 'Create Backup' }).click();
    await expect(page.getByTestId('job-status')).toContainText('kept locally', { timeout: 60_000 });
    const three = page.locator('[data-testid^=backup-row-]');
    await expect(three).toHaveCount(3);
    expect(await three.evaluateAll((els) => els.map((e) => e.getAttribute('data-where')))).toEqual(['local', 's3', 'both']);
    await page.setViewportSize({ width: 1100, height: 640 });
    await page.screenshot({ path: info.outputPath('job-local-s3-both.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 720 });

    // Settings deleted: the next backup stays local.
    await page.getByRole('link', { name: 'Settings' }).click();
    await expect(page.getByRole('heading', { name: 'Settings' })).toBeVisible();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await expect(dialog).toBeVisible();
    await dialog.getByRole('button', { name: 'Delete settings' }).click();
    await expect(page.getByTestId('settings-status')).toContainText('deleted');
    await expect(page.getByTestId('secret-set')).toHaveCount(0);
    await page.goto(`${c.url}/#/jobs/app`);
    await expect(page.getByRole('heading', { name: 'app', level: 1 })).toBeVisible();
    const keysBefore = await bucketKeys(bucket);
    await page.getByRole('button', { name: 'Create Backup' }).click();
    await expect(page.getByTestId('job-status')).toContainText('kept locally', { timeout: 60_000 });
    // Without settings the bucket is not listed: every row is a local copy, the new one first.
    const rows = page.locator('[data-testid^=backup-row-]');
    await expect(rows.first()).not.toHaveAttribute('data-testid', `backup-row-${backupName}`);
    await expect(rows.first()).toHaveAttribute('data-where', 'local');
    await expect(rows.first().getByRole('img', { name: 'in S3' })).toHaveCount(0);
    await expect(rows.first().getByRole('img', { name: 'local copy' })).toBeVisible();
    expect(await rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-where')).filter((w) => w !== 'local'))).toEqual([]);
    expect(await bucketKeys(bucket)).toEqual(keysBefore);
    await page.screenshot({ path: info.outputPath('job-local-only.png'), fullPage: true });
    expect(changes.length).toBeGreaterThanOrEqual(8);
    expect(changes.filter((x) => !x.endsWith(' csrf'))).toEqual([]);
    for (const m of ['PUT /api/settings/s3', 'POST /api/jobs/app/backup', 'DELETE /api/jobs/app/backups/', 'POST /api/jobs/app/restore', 'DELETE /api/settings/s3']) expect(changes.some((x) => x.startsWith(m))).toBe(true);
  } finally {
    writer.kill('SIGKILL');
  }
});

test('phone width: the jobs screen at 375 px, the login form by keyboard alone, archives and sync', async ({ page }, info) => {
  const dir = await tempDir('offsite-web-views-');
  const archiveCatalog = await makeArchiveCatalog(dir);
  const syncConfig = await makeSyncAccount(dir);
  const c = await startConsole({
    dir,
    config: `[jobs.app]\nsource = "sqlite:app.db"\nschedule = "1h"\n\n[jobs.reports]\nsource = "file:report.csv"\nschedule = "0 3 * * *"\n`,
    args: ['--archive-catalog', archiveCatalog, '--sync-config', syncConfig],
  });
  consoles.push(c);
  await page.setViewportSize({ width: 375, height: 812 });
  await page.goto(`${c.url}/`);
  await expect(page).toHaveURL(/#\/login$/);
  await page.screenshot({ path: info.outputPath('login-phone.png') });

  // Keyboard only: the token field has the focus, Enter submits.
  const token = page.locator('input[name=token]');
  await expect(token).toBeFocused();
  await page.keyboard.type('not-the-token');
  await page.keyboard.press('Enter');
  await expect(page.getByRole('status')).toContainText('Wrong admin token');
  await token.fill('');
  await page.keyboard.type(c.token);
  await page.keyboard.press('Tab');
  await expect(page.getByRole('button', { name: 'Log in' })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { name: 'Jobs', level: 1 })).toBeVisible();

  await expect(page.getByTestId('job-row-app')).toBeVisible();
  await expect(page.getByTestId('job-row-reports')).toBeVisible();
  // Nothing wider than the screen.
  expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
  await page.screenshot({ path: info.outputPath('jobs-phone.png'), fullPage: true });
  await expect(page).toHaveTitle('Jobs — Offsite console');
  await page.getByRole('link', { name: 'app' }).click();
  await expect(page.getByRole('button', { name: 'Create Backup' })).toBeVisible();
  expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
  await page.screenshot({ path: info.outputPath('job-phone.png'), fullPage: true });
  await page.getByRole('link', { name: 'Settings' }).click();
  await expect(page.locator('input[name=bucket]')).toBeEditable();
  expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
  await page.screenshot({ path: info.outputPath('settings-phone.png'), fullPage: true });
  await page.getByRole('link', { name: 'Jobs' }).click();

  await page.setViewportSize({ width: 1100, height: 700 });
  await page.screenshot({ path: info.outputPath('jobs.png') });
  // Archives: the totals by year and every session the CLI uploaded.
  await page.getByRole('link', { name: 'Archives' }).click();
  await expect(page.getByRole('heading', { name: 'Archives', level: 1 })).toBeVisible();
  const totals = page.getByRole('table').first();
  await expect(totals.getByRole('row')).toHaveCount(3);
  await expect(totals.getByRole('row', { name: /^2026/ })).toContainText('2');
  for (const [year, session] of ARCHIVE_SESSIONS) await expect(page.getByRole('row', { name: new RegExp(session) })).toContainText(year);
  await page.screenshot({ path: info.outputPath('archives.png'), fullPage: true });

  // Sync: both devices, this one marked, what is pending.
  await page.getByRole('link', { name: 'Sync' }).click();
  await expect(page.getByRole('heading', { name: 'Sync', level: 1 })).toBeVisible();
  await expect(page.getByRole('row', { name: /laptop/ })).toContainText('this device');
  await expect(page.getByRole('row', { name: /desktop/ })).toBeVisible();
  await expect(page.getByRole('row', { name: /desktop/ })).not.toContainText('this device');
  await page.screenshot({ path: info.outputPath('sync.png'), fullPage: true });

  // A reload keeps the session (GET /api/session gives the CSRF token back).
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Sync', level: 1 })).toBeVisible();
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page.locator('input[name=token]')).toBeVisible();
});
