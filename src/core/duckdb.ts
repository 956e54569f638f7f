import { closeSync, existsSync, openSync, readSync, realpathSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import {
  type DuckDBConnection,
  DuckDBDataChunkWriter,
  DuckDBInstance,
  type DuckDBValue,
  version as duckDbVersion,
} from '@duckdb/node-api';
import { setting } from '../config/env.ts';
import { ERR, fail } from './errors.ts';
import { ensureDir } from './files.ts';

/**
 * One DuckDB database per file per process, shared by every store that uses the file.
 *
 * Why: `cryptocast run` keeps features, predictions and error records in one file. Two `DuckDBInstance`s on one
 * file in one process are two databases writing the same bytes, each checkpointing its own view over the other's:
 * the last checkpoint wins and the other's tables vanish (every prediction was lost that way). DuckDB's own file lock
 * only guards against other processes. So every store opens the file through `openDuckDb`, which keeps one instance
 * per file (its canonical path, and its device and inode once it exists: a hard link is the same file under another
 * path) with a count of its users and closes it when the last one leaves. Each store gets a
 * connection of its own (DuckDB runs them as concurrent transactions on one database) and a queue that runs its
 * statement sequences one at a time (a staging table, then an upsert, then a commit must not interleave).
 *
 * `:memory:` is never shared: each open is a database of its own, as before.
 */
export interface DuckDbSession {
  /** The canonical path (`:memory:` for an in-memory database). */
  readonly path: string;
  readonly conn: DuckDBConnection;
  /** Runs `fn` after every earlier `serial` call of this session has settled. */
  serial<T>(fn: () => Promise<T>): Promise<T>;
  /** Waits for queued work, closes the connection, and the database when no other store uses it. */
  close(): Promise<void>;
}

interface SharedDatabase {
  instance: Promise<DuckDBInstance>;
  users: number;
  /** The keys it is found by in `databases` (`databaseKeys`; the inode's added once the open made the file). */
  keys: Set<string>;
}

const databases = new Map<string, SharedDatabase>();
/** Databases being closed: a new open of the same file waits, so two instances never hold it at once. */
const closing = new Map<string, Promise<void>>();

/** The path every store of this process uses for `path`: absolute, with the folder's and the file's symlinks resolved. */
export function canonicalDuckDbPath(path: string): string {
  if (path === ':memory:') return path;
  const abs = resolve(path);
  try {
    ensureDir(dirname(abs));
  } catch (err) {
    // The store's path is what the user gave: name it (the folder alone read like an output file's problem).
    throw fail(ERR.STORE_URL, `cannot open ${path} as a DuckDB store: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const inFolder = join(realpathSync(dirname(abs)), basename(abs));
  // The file itself may be a symlink too (to a file elsewhere): two paths to it opened as two databases in this
  // process, each checkpointing over the other. A file not there yet (or a dangling link) keeps its folder's path.
  try {
    return realpathSync(inFolder);
  } catch {
    return inFolder;
  }
}

/**
 * The keys of the file at canonical `path` in `databases` and `closing`: the path, and its device and inode when the
 * file is there. A hard link to the store file is another path to the same file, which `realpath` leaves as it is:
 * opened by it, a second database on the file checkpointed over the first one's tables.
 */
function databaseKeys(path: string): string[] {
  try {
    const st = statSync(path);
    return [path, `inode:${st.dev}:${st.ino}`];
  } catch {
    return [path]; // not there yet: the open creates it (and adds its inode then)
  }
}

function sharedDatabase(keys: readonly string[]): SharedDatabase | undefined {
  for (const k of keys) {
    const db = databases.get(k);
    if (db !== undefined) return db;
  }
  return undefined;
}

/** How many stores of this process share the database at `path` (tests). */
export function duckDbUsers(path: string): number {
  return sharedDatabase(databaseKeys(canonicalDuckDbPath(path)))?.users ?? 0;
}

/** What to do about a file that is not a DuckDB database, or a damaged one (never changed by the store). */
const DAMAGED_HINT =
  'the file is not a DuckDB database, or is damaged or cut short; it was not changed: move it aside (and its .wal ' +
  'file) to start a new store there, or give another file with --store duckdb:PATH';

/** Bytes 8–11 of every DuckDB database file (its main header). */
const DUCKDB_MAGIC = Buffer.from('DUCK', 'latin1');

/**
 * Whether the file at `path` is something other than a DuckDB database: not empty, and without DuckDB's magic bytes.
 * Why ask before DuckDB does: it opens some files that are not its own as databases — a CSV, JSON or Parquet file
 * by its name as an empty in-memory database (every write the store acknowledged was gone at the close, without a
 * word), a SQLite file through an extension it downloads (and would then write into another program's file). An
 * empty file is left to DuckDB (another process may be creating it: DuckDB then names the lock).
 */
function foreignFile(path: string): boolean {
  let fd: number;
  try {
    if (!statSync(path).isFile()) return false; // a folder (`isFolder`) and the like: DuckDB's own error names it
    fd = openSync(path, 'r');
  } catch {
    return false; // not there or not readable: DuckDB's own error says which
  }
  try {
    const head = Buffer.alloc(12);
    const n = readSync(fd, head, 0, head.length, 0);
    return n > 0 && !(n === head.length && head.subarray(8, 12).equals(DUCKDB_MAGIC));
  } finally {
    closeSync(fd);
  }
}

/** DuckDB's refusal of a file of a storage version it does not read (another DuckDB version wrote it). */
const OTHER_STORAGE_VERSION =
  /Trying to read a database file with version number (\d+), but we can only read versions between (\d+) and (\d+)/i;

/**
 * Which DuckDB wrote the file at `path`: the version text of its main header (bytes 52–83, after the checksum, the
 * magic, the storage version and four flags; written since DuckDB v1.0), else what DuckDB's error says of it (it
 * knows the older versions by their storage version), else undefined.
 */
function writerOf(path: string, msg: string): string | undefined {
  try {
    const fd = openSync(path, 'r');
    try {
      const text = Buffer.alloc(32);
      readSync(fd, text, 0, text.length, 52);
      const v = text.toString('latin1').split('\0')[0]!;
      if (/^v\d+\.\d+\.\d+[\w.-]*$/.test(v)) return `DuckDB ${v}`;
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not readable here: what DuckDB says, below.
  }
  return /created with (DuckDB version [^\n]*?)\.?$/m.exec(msg)?.[1];
}

/**
 * The error for a store file of a storage version this DuckDB does not read. DuckDB's own first line names only
 * storage version numbers, and the URL hint ("use duckdb:PATH …") did not answer it: say which DuckDB wrote the file,
 * which one this is, and what to do (the file is never changed).
 */
function otherStorageVersionError(path: string, msg: string, m: RegExpExecArray, err: unknown) {
  const [storage, lowest, highest] = [m[1], m[2], m[3]].map(Number) as [number, number, number];
  const newer = storage > highest;
  const writer = writerOf(path, msg) ?? (newer ? 'a newer DuckDB' : 'an older DuckDB');
  const ours = `DuckDB ${duckDbVersion()}`;
  return fail(
    ERR.STORE_URL,
    `cannot open ${path} as a DuckDB store: it was written by ${writer} (storage version ${storage}), ` +
      `${newer ? 'newer' : 'older'} than this cryptocast's ${ours} reads (storage versions ${lowest} to ${highest})`,
    {
      cause: err,
      hint: newer
        ? 'it was not changed: run it with the cryptocast version that wrote it (a newer one), or give this version ' +
          'a store of its own with --store duckdb:PATH'
        : `it was not changed: move its data with ${writer}'s CLI (EXPORT DATABASE) into ${ours}'s (IMPORT ` +
          'DATABASE into a new file), or give this version a store of its own with --store duckdb:PATH',
    },
  );
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

async function createInstance(path: string): Promise<DuckDBInstance> {
  const existed = path === ':memory:' || existsSync(path);
  // A .wal holds the writes not yet checkpointed into its database file, their only copy. Without the file (moved
  // away without it: a backup, a copy to another disk) DuckDB made a new database and deleted the .wal.
  if (!existed && existsSync(`${path}.wal`))
    throw fail(
      ERR.STORE_URL,
      `cannot open ${path} as a DuckDB store: ${path}.wal is there without its database file (it holds writes of that database not yet in the file)`,
      {
        hint:
          'put it back beside its database file (and open that), or move the .wal aside to start a new store ' +
          'there; it was not changed',
      },
    );
  // DuckDB says "Could not read from file …: Is a directory", which the URL hint ("use duckdb:PATH …") did not answer.
  if (existed && path !== ':memory:' && isFolder(path))
    throw fail(ERR.STORE_URL, `cannot open ${path} as a DuckDB store: it is a folder`, {
      hint: `name a file for the store, e.g. duckdb:${join(path, 'cryptocast.duckdb')}`,
    });
  if (existed && path !== ':memory:' && foreignFile(path))
    throw fail(ERR.STORE_URL, `cannot open ${path} as a DuckDB store: it is not a DuckDB database file`, {
      hint: DAMAGED_HINT,
    });
  // One worker thread by default: every query here is a small write or a range read, and on a 2-core machine a
  // second DuckDB thread took the core the pipeline runs on (docs/benchmarks.md, the monitor's cost in `run`).
  const threads = String(setting('CRYPTOCAST_DUCKDB_THREADS') ?? 1);
  try {
    return await DuckDBInstance.create(path, { threads });
  } catch (err) {
    const msg = (err as Error).message;
    // Before anything else: the file is another process's, it must not be touched (it may have just created it).
    if (/Could not set lock/i.test(msg))
      throw fail(ERR.STORE_LOCKED, `the store file ${path} is in use by another process`, { cause: err });
    const storage = OTHER_STORAGE_VERSION.exec(msg);
    if (storage !== null) throw otherStorageVersionError(path, msg, storage, err);
    // An empty file this open created and could not finish (a full disk) would make every later open fail as "not a
    // valid DuckDB database file", after the space is freed too: it goes. A file that was there is never touched.
    if (!existed) {
      try {
        if (statSync(path).size === 0) rmSync(path);
      } catch {
        // Not there, or left for the user: the error below names the store.
      }
    }
    // The URL is fine when the file is what is wrong: say what to do about the file.
    const why = /Could not read enough bytes/i.test(msg) ? 'damaged' : lastingStoreFailure(msg);
    const hint =
      why === 'damaged'
        ? DAMAGED_HINT
        : why === 'read-only'
          ? 'the store needs a writable folder: give a file on a writable disk with --store duckdb:PATH'
          : why === 'denied'
            ? 'this user cannot write there: give a file in a folder it can write (--store duckdb:PATH), or fix the permissions'
            : why === 'full'
              ? 'free space on that disk, or give a file on another disk with --store duckdb:PATH'
              : undefined;
    throw fail(ERR.STORE_URL, `cannot open ${path} as a DuckDB store: ${msg.split('\n')[0]}`, {
      cause: err,
      ...(hint ? { hint } : {}),
    });
  }
}

export async function openDuckDb(path: string): Promise<DuckDbSession> {
  const key = canonicalDuckDbPath(path);
  const memory = key === ':memory:';
  const keys = memory ? [key] : databaseKeys(key);
  let db: SharedDatabase | undefined = memory ? undefined : sharedDatabase(keys);
  if (db === undefined) {
    const previous = Promise.all(keys.map((k) => closing.get(k)));
    const created: SharedDatabase = {
      instance: previous.then(() => createInstance(key)),
      users: 0,
      keys: new Set(keys),
    };
    if (!memory) {
      for (const k of keys) databases.set(k, created);
      // A file this open made: its inode, so a hard link made to it later finds this database too.
      void created.instance.then(
        () => {
          for (const k of databaseKeys(key))
            if (created.users > 0 && !databases.has(k)) {
              databases.set(k, created);
              created.keys.add(k);
            }
        },
        () => {},
      );
    }
    db = created;
  }
  db.users++;
  const shared = db;
  let instance: DuckDBInstance;
  let conn: DuckDBConnection;
  try {
    instance = await shared.instance;
    conn = await instance.connect();
  } catch (err) {
    release(shared);
    throw err;
  }
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  return {
    path: key,
    conn,
    serial<T>(fn: () => Promise<T>): Promise<T> {
      const run = queue.then(fn, fn);
      queue = run.catch(() => {});
      return run;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await queue;
      conn.closeSync();
      release(shared);
    },
  };
}

function release(db: SharedDatabase): void {
  db.users--;
  if (db.users > 0) return;
  for (const k of db.keys) if (databases.get(k) === db) databases.delete(k);
  // Closing checkpoints the WAL into the file. A new open of the file, by any of its keys, waits for it (`closing`).
  const done = db.instance.then(
    (i) => i.closeSync(),
    () => {},
  );
  for (const k of db.keys) closing.set(k, done);
  void done.then(() => {
    for (const k of db.keys) if (closing.get(k) === done) closing.delete(k);
  });
}

/**
 * Runs `body` in a transaction, empties `staging` (a temp table the body read from) and commits. A failure is what the
 * caller hears: after a failed COMMIT (a full disk, a conflict) DuckDB has rolled back already and ROLLBACK itself
 * fails ("no transaction is active"), which used to replace it. `staging` is emptied whatever happened.
 */
export async function inTransaction(
  conn: DuckDBConnection,
  body: () => Promise<void>,
  staging?: string,
): Promise<void> {
  await conn.run('BEGIN TRANSACTION');
  try {
    await body();
    if (staging !== undefined) await conn.run(`DELETE FROM ${staging}`);
    await conn.run('COMMIT');
  } catch (err) {
    await conn.run('ROLLBACK').catch(() => {});
    if (staging !== undefined) await conn.run(`DELETE FROM ${staging}`).catch(() => {});
    throw err;
  }
}

/**
 * Appends `rows` to `table` (in `catalog`: 'temp' for a staging table) through DuckDB's appender, in whole data chunks
 * (2,048 rows: far fewer native calls than a value at a time). Call it inside `inTransaction`: an appender on its own
 * commits what it appends when closed, so a failure after it left the rows stored while the write said it failed.
 * A failure part-way (a value the column refuses) clears and closes the appender before the error goes on: left open,
 * it flushed its full chunks in a commit of its own when garbage-collected, after the transaction had rolled back.
 */
export async function appendRows(
  conn: DuckDBConnection,
  table: string,
  rows: Iterable<readonly DuckDBValue[]>,
  catalog?: 'temp',
): Promise<void> {
  const app = catalog ? await conn.createAppender(table, 'main', catalog) : await conn.createAppender(table);
  try {
    const writer = DuckDBDataChunkWriter.forAppender(app);
    for (const row of rows) writer.appendRow(row as DuckDBValue[]);
    writer.flush();
    app.closeSync();
  } catch (err) {
    app.clear();
    app.closeSync();
    throw err;
  }
}

/**
 * Why a DuckDB error will not pass with a retry, or undefined when it may (a conflict, a lock, a busy file): the disk
 * is full, the file system is read-only, or the file is damaged (DuckDB then invalidates the database, and every
 * later statement fails the same way). `cryptocast run` stops on these with one clear line instead of re-reading
 * its input for ever; a service keeps retrying (the disk may be freed, the volume remounted).
 */
export type LastingStoreFailure = 'full' | 'read-only' | 'denied' | 'damaged';

export function lastingStoreFailure(err: unknown): LastingStoreFailure | undefined {
  const msg = err instanceof Error ? err.message : String(err);
  if (/No space left on device|Disk quota exceeded/i.test(msg)) return 'full';
  if (/Read-only file system/i.test(msg)) return 'read-only';
  if (/Permission denied/i.test(msg)) return 'denied';
  if (/Corrupt database file|not a valid DuckDB database file|database has been invalidated/i.test(msg))
    return 'damaged';
  return undefined;
}

/** The catalogued error for a lasting failure of the store file `path`: what happened, and what to do. */
export function lastingStoreError(path: string, why: LastingStoreFailure, err: unknown) {
  // The line that says why (DuckDB puts the original error of an invalidated database on a later line).
  const lines = (err instanceof Error ? err.message : String(err)).split('\n');
  const detail = (lines.find((l) => lastingStoreFailure(l) === why) ?? lines[0]!)
    .replace(/^\s*(Original Error:\s*)?/i, '')
    .slice(0, 300);
  const what = {
    full: `the disk of the store file ${path} is full`,
    'read-only': `the store file ${path} is on a read-only file system`,
    denied: `the store file ${path} cannot be written: permission denied`,
    damaged: `the store file ${path} is damaged`,
  }[why];
  const hint = {
    full:
      'free space on that disk (or give the store a file on another disk with --store duckdb:PATH), then run the ' +
      'same command again: what was reported stored is kept, and a replay writes the rest',
    'read-only': 'give the store a file on a writable disk (--store duckdb:PATH)',
    denied:
      'give the store a file in a folder this user can write (--store duckdb:PATH), or fix its permissions',
    damaged:
      'it was not changed: move it and its .wal file aside (keep them if you need what they hold) and run again to ' +
      'start a new store, ' +
      'or give another file with --store duckdb:PATH',
  }[why];
  return fail(ERR.STORE, `${what} (${detail})`, { hint, cause: err });
}
