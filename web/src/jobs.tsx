// Jobs: every configured backup job with its last and next runs; refreshed by `jobs` events.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { Status, StatusDot, type Message } from './components.js';
import { onJobs } from './events.js';
import { formatDate, formatSchedule } from './format.js';
import type { Job } from './types.js';

export function Jobs() {
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [message, setMessage] = useState<Message | null>(null);

  useEffect(() => {
    api.jobs().then(
      (r) => setJobs(r.jobs),
      (e: Error) => setMessage({ kind: 'error', text: `Could not load the jobs: ${e.message}` }),
    );
    return onJobs(setJobs);
  }, []);

  return (
    <main>
      <h1>Jobs</h1>
      <Status message={message} />
      {jobs && jobs.length === 0 && (
        <p class="card">
          No jobs configured. Add one to <code>offsite.toml</code> (<code>[jobs.NAME]</code> with a <code>source</code>) and restart the console.
        </p>
      )}
      {jobs && jobs.length > 0 && (
        <table class="table responsive">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Source</th>
              <th scope="col">Schedule</th>
              <th scope="col">Last success</th>
              <th scope="col">Last failure</th>
              <th scope="col">Next run</th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {jobs.map((j) => (
              <tr key={j.name} data-testid={`job-row-${j.name}`}>
                <th scope="row" data-label="Name">
                  <a href={`#/jobs/${encodeURIComponent(j.name)}`}>{j.name}</a>
                </th>
                <td data-label="Source">
                  <span class="kind">{j.source_kind}</span> <span class="mono">{j.source}</span>
                  <div class="sub">{j.destination ? `→ ${j.destination}${j.destination_from === 'settings' ? ' (settings)' : ''}` : '→ local only'}</div>
                </td>
                <td data-label="Schedule">{formatSchedule(j.schedule)}</td>
                <td data-label="Last success">{formatDate(j.last_success)}</td>
                <td data-label="Last failure" title={j.last_failure?.error}>
                  {j.last_failure ? (
                    <>
                      {formatDate(j.last_failure.at)}
                      <div class="sub error-text">{j.last_failure.error}</div>
                    </>
                  ) : (
                    '—'
                  )}
                </td>
                <td data-label="Next run">{formatDate(j.next_run)}</td>
                <td data-label="Status" class="nowrap">
                  <StatusDot status={j.status} /> <span class="status-word">{j.status}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
