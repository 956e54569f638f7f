import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ERR, fail } from '../../core/errors.ts';

/** What a REST backfill remembers between runs (one JSON file per backfill). */
export interface BackfillState {
  version: 1;
  pair: string;
  since: number;
  until: number;
  /** The exchange's cursor for the next page (Kraken: ns since the epoch, a decimal string). */
  cursor: string;
  /** Highest trade id delivered: ids grow with time, so anything at or below it was already delivered. */
  maxId: number;
  fetchedTrades: number;
  lastTradeTs?: number;
  done: boolean;
  /** When done: event time up to which the range is complete (the final watermark). */
  completeTs: number;
}

/** Reads a state file; undefined if there is none. A corrupt file is an error (never silently restart). */
export function loadState(path: string | undefined): BackfillState | undefined {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text);
  } catch {
    throw fail(ERR.STATE_FILE, `state file ${path} is not JSON: remove it to start over`);
  }
  // Files of the first version named the range `sinceMs`/`untilMs` and the count `fetched`.
  const s = {
    version: 1,
    pair: raw.pair,
    since: raw.since ?? raw.sinceMs,
    until: raw.until ?? raw.untilMs,
    cursor: raw.cursor,
    maxId: raw.maxId ?? -1,
    fetchedTrades: raw.fetchedTrades ?? raw.fetched ?? 0,
    lastTradeTs: raw.lastTradeTs,
    done: raw.done === true,
    completeTs: raw.completeTs ?? raw.until ?? raw.untilMs,
  };
  const ok =
    typeof s.pair === 'string' &&
    typeof s.since === 'number' &&
    typeof s.until === 'number' &&
    typeof s.cursor === 'string' &&
    /^\d+$/.test(s.cursor) &&
    typeof s.maxId === 'number' &&
    typeof s.fetchedTrades === 'number' &&
    typeof s.completeTs === 'number';
  if (!ok) throw fail(ERR.STATE_FILE, `state file ${path} is not a backfill state: remove it to start over`);
  return s as BackfillState;
}

/** Writes atomically (temp file + rename): a crash never leaves half a state file. */
export function saveState(path: string | undefined, s: BackfillState): void {
  if (path === undefined) return;
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`);
  renameSync(tmp, path);
}
