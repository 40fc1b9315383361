// Dates and sizes as the page shows them: local time to the second, binary units.

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

/** "3600" → "every 1 h"; a cron expression as it is. */
export function formatSchedule(s: string): string {
  if (!/^\d+$/.test(s)) return s;
  const n = Number(s);
  if (n % 86400 === 0) return `every ${n / 86400} d`;
  if (n % 3600 === 0) return `every ${n / 3600} h`;
  if (n % 60 === 0) return `every ${n / 60} min`;
  return `every ${n} s`;
}
