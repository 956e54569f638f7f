/** Numbers with units, times in UTC (labelled as such). */
export const utc = (ts: number) => `${new Date(ts).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
export const pct = (x: number | null | undefined, d = 2) =>
  x === null || x === undefined ? '—' : `${(x * 100).toFixed(d)} %`;
export const price = (x: number | null | undefined, quote: string) =>
  x === null || x === undefined
    ? '—'
    : `${x.toLocaleString('en-US', { maximumFractionDigits: x < 10 ? 4 : 2 })} ${quote}`;
export const num = (x: number | null | undefined, d = 0) =>
  x === null || x === undefined
    ? '—'
    : x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
export const duration = (ms: number | null | undefined) => {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  if (ms < 172_800_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
};
/** HTML-escapes text that came from data (news titles, messages). */
export const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
