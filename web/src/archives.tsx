// Archives: the archive catalog, read-only (totals by year and storage class, sessions).
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { Status, type Message } from './components.js';
import { formatBytes, formatDate } from './format.js';
import type { Archives as ArchivesData } from './types.js';

export function Archives() {
  const [data, setData] = useState<ArchivesData | null>(null);
  const [message, setMessage] = useState<Message | null>(null);
  useEffect(() => {
    api.archives().then(setData, (e: Error) => setMessage({ kind: 'error', text: `Could not load the archives: ${e.message}` }));
  }, []);
  return (
    <main>
      <h1>Archives</h1>
      <Status message={message} />
      {data && !data.configured && (
        <p class="card">
          No archive catalog. Start the console with <code>--archive-catalog FILE</code> (the catalog of <code>offsite archive upload</code>) to see it here.
        </p>
      )}
      {data?.configured && (
        <>
          <section>
            <h2>Totals</h2>
            {data.totals.length === 0 ? (
              <p class="card">Nothing archived yet.</p>
            ) : (
              <table class="table responsive">
                <thead>
                  <tr>
                    <th scope="col">Year</th>
                    <th scope="col">Storage class</th>
                    <th scope="col">Archives</th>
                    <th scope="col">Size</th>
                  </tr>
                </thead>
                <tbody>
                  {data.totals.map((t) => (
                    <tr key={`${t.year}-${t.storage_class}`}>
                      <td data-label="Year">{t.year}</td>
                      <td data-label="Storage class">{t.storage_class ?? '—'}</td>
                      <td data-label="Archives">{t.archives}</td>
                      <td data-label="Size">{formatBytes(t.bytes)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
          <section>
            <h2>Sessions</h2>
            {data.sessions.length === 0 ? (
              <p class="card">No sessions.</p>
            ) : (
              <table class="table responsive">
                <thead>
                  <tr>
                    <th scope="col">Session</th>
                    <th scope="col">Year</th>
                    <th scope="col">Status</th>
                    <th scope="col">Size</th>
                    <th scope="col">Storage class</th>
                    <th scope="col">Uploaded</th>
                  </tr>
                </thead>
                <tbody>
                  {data.sessions.map((s) => (
                    <tr key={s.session}>
                      <th scope="row" data-label="Session" class="mono">
                        {s.session}
                      </th>
                      <td data-label="Year">{s.year}</td>
                      <td data-label="Status">{s.status}</td>
                      <td data-label="Size">{formatBytes(s.size)}</td>
                      <td data-label="Storage class">{s.storage_class ?? '—'}</td>
                      <td data-label="Uploaded">{formatDate(s.uploaded_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
          {data.last_runs.length > 0 && (
            <section>
              <h2>Recent runs</h2>
              <table class="table responsive">
                <thead>
                  <tr>
                    <th scope="col">Kind</th>
                    <th scope="col">Status</th>
                    <th scope="col">Started</th>
                    <th scope="col">Finished</th>
                    <th scope="col">Bytes</th>
                    <th scope="col">Error</th>
                  </tr>
                </thead>
                <tbody>
                  {data.last_runs.map((r, i) => (
                    <tr key={i}>
                      <td data-label="Kind">{r.kind}</td>
                      <td data-label="Status">{r.status}</td>
                      <td data-label="Started">{formatDate(r.started_at)}</td>
                      <td data-label="Finished">{formatDate(r.finished_at)}</td>
                      <td data-label="Bytes">{formatBytes(r.bytes)}</td>
                      <td data-label="Error" class="error-text">
                        {r.error ?? ''}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </section>
          )}
        </>
      )}
    </main>
  );
}
