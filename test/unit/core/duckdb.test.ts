import assert from 'node:assert/strict';
import {
  existsSync,
  linkSync,
  readFileSync,
  renameSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DuckDBInstance, version as duckDbVersion } from '@duckdb/node-api';
import { duckDbUsers, openDuckDb } from '../../../src/core/duckdb.ts';
import { type CryptocastError, ERR } from '../../../src/core/errors.ts';
import { scratchDir } from '../../support/scratch.ts';

describe('openDuckDb: one database per file per process', () => {
  it('shares one instance between every session on a file (symlinked folders included) and closes it with the last', async () => {
    const dir = scratchDir('duck-');
    const link = join(scratchDir('duck-link-'), 'link');
    symlinkSync(dir, link);
    const file = join(dir, 'a.duckdb');
    const a = await openDuckDb(file);
    const b = await openDuckDb(join(link, 'a.duckdb'));
    assert.equal(a.path, b.path);
    assert.equal(duckDbUsers(file), 2);
    // One database: a table made by one session is seen by the other at once.
    await a.conn.run('CREATE TABLE t (x INTEGER)');
    await a.conn.run('INSERT INTO t VALUES (1), (2)');
    const r = await b.conn.runAndReadAll('SELECT count(*) AS n FROM t');
    assert.equal(Number(r.getRowObjects()[0]!.n), 2);
    await a.close();
    assert.equal(duckDbUsers(file), 1);
    await b.close();
    assert.equal(duckDbUsers(file), 0);
    // Reopened after the last close: a fresh instance that finds the checkpointed rows.
    const c = await openDuckDb(file);
    const again = await c.conn.runAndReadAll('SELECT count(*) AS n FROM t');
    assert.equal(Number(again.getRowObjects()[0]!.n), 2);
    await c.close();
  });

  // Two instances on one file in one process are two databases checkpointing over each other: the tables of one
  // vanished. A symlink to the file (not only to its folder) is the same file.
  it('a symlink to the store file is the same database, not a second one over the same bytes', async () => {
    const dir = scratchDir('duck-file-link-');
    const file = join(dir, 'a.duckdb');
    const a = await openDuckDb(file);
    await a.conn.run('CREATE TABLE t1 AS SELECT 1 AS x');
    const link = join(dir, 'b.duckdb');
    symlinkSync(file, link);
    const b = await openDuckDb(link);
    assert.equal(a.path, b.path);
    assert.equal(duckDbUsers(file), 2);
    await b.conn.run('CREATE TABLE t2 AS SELECT 2 AS x');
    await b.close();
    await a.close();
    const c = await openDuckDb(file);
    const r = await c.conn.runAndReadAll(
      "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'main' ORDER BY t",
    );
    assert.deepEqual(
      r.getRowObjects().map((x) => x.t),
      ['t1', 't2'],
    );
    await c.close();
  });

  // A hard link has no path of its own to resolve: the same file under two names (realpath keeps both).
  it('a hard link to the store file is the same database, not a second one over the same bytes', async () => {
    const dir = scratchDir('duck-hard-link-');
    const file = join(dir, 'a.duckdb');
    const a = await openDuckDb(file);
    await a.conn.run('CREATE TABLE t1 AS SELECT 1 AS x');
    await a.conn.run('CHECKPOINT');
    const link = join(dir, 'b.duckdb');
    linkSync(file, link);
    const b = await openDuckDb(link);
    assert.equal(duckDbUsers(file), 2);
    assert.equal(duckDbUsers(link), 2);
    // One database: what one session made the other sees at once.
    const seen = await b.conn.runAndReadAll('SELECT count(*) AS n FROM t1');
    assert.equal(Number(seen.getRowObjects()[0]!.n), 1);
    await b.conn.run('CREATE TABLE t2 AS SELECT 2 AS x');
    await b.close();
    await a.close();
    assert.equal(duckDbUsers(file), 0);
    const c = await openDuckDb(file);
    const r = await c.conn.runAndReadAll(
      "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'main' ORDER BY t",
    );
    assert.deepEqual(
      r.getRowObjects().map((x) => x.t),
      ['t1', 't2'],
    );
    await c.close();
  });

  // The first open creates the file: a hard link made to it afterwards is the same database too.
  it('a hard link made to a store file this process created is the same database', async () => {
    const dir = scratchDir('duck-hard-link-new-');
    const file = join(dir, 'a.duckdb');
    const a = await openDuckDb(file);
    const link = join(dir, 'b.duckdb');
    linkSync(file, link);
    const b = await openDuckDb(link);
    assert.equal(duckDbUsers(link), 2);
    await b.close();
    await a.close();
    assert.equal(duckDbUsers(link), 0);
  });

  it('an open racing the close of the last session waits for it (never two instances on a file)', async () => {
    const file = join(scratchDir('duck-'), 'race.duckdb');
    for (let i = 0; i < 20; i++) {
      const s = await openDuckDb(file);
      await s.conn.run('CREATE TABLE IF NOT EXISTS t (x INTEGER)');
      await s.conn.run(`INSERT INTO t VALUES (${i})`);
      const closing = s.close();
      const next = openDuckDb(file);
      await closing;
      await (await next).close();
    }
    const s = await openDuckDb(file);
    const r = await s.conn.runAndReadAll('SELECT count(*) AS n FROM t');
    assert.equal(Number(r.getRowObjects()[0]!.n), 20);
    await s.close();
  });

  it(':memory: is never shared', async () => {
    const a = await openDuckDb(':memory:');
    const b = await openDuckDb(':memory:');
    await a.conn.run('CREATE TABLE only_in_a (x INTEGER)');
    await assert.rejects(b.conn.run('SELECT * FROM only_in_a'), /only_in_a/);
    await a.close();
    await b.close();
  });

  it('serial runs each session’s calls one after another, in order, even when one fails', async () => {
    const s = await openDuckDb(':memory:');
    const order: number[] = [];
    const slow = s.serial(async () => {
      await new Promise((r) => setImmediate(r));
      order.push(1);
    });
    const failing = s.serial(async () => {
      order.push(2);
      throw new Error('boom');
    });
    const last = s.serial(async () => order.push(3));
    await slow;
    await assert.rejects(failing, /boom/);
    await last;
    assert.deepEqual(order, [1, 2, 3]);
    await s.close();
  });

  it('a path that cannot hold a file fails at once with CC_ERR_STORE_URL naming the store (no hang under /proc)', async () => {
    await assert.rejects(openDuckDb('/proc/nope/x.duckdb'), (e: CryptocastError) => {
      assert.equal(e.code, ERR.STORE_URL.code);
      assert.match(e.message, /\/proc\/nope\/x\.duckdb as a DuckDB store: cannot create folder \/proc\/nope/);
      return true;
    });
  });

  it('a path that is a folder: CC_ERR_STORE_URL saying so, the hint names a file in it (not the URL forms)', async () => {
    const dir = scratchDir('duck-folder-');
    await assert.rejects(openDuckDb(dir), (e: CryptocastError) => {
      assert.equal(e.code, ERR.STORE_URL.code);
      assert.match(e.message, /is a folder/);
      assert.ok(e.hint?.includes(`duckdb:${join(dir, 'cryptocast.duckdb')}`), e.hint);
      return true;
    });
    assert.equal(duckDbUsers(dir), 0);
  });

  it('a file that is not a DuckDB database: CC_ERR_STORE_URL naming it, with what to do about the file', async () => {
    const file = join(import.meta.dirname, 'duckdb.test.ts');
    await assert.rejects(openDuckDb(file), (e: CryptocastError) => {
      assert.equal(e.code, ERR.STORE_URL.code);
      assert.match(e.message, /duckdb\.test\.ts/);
      // Not the URL hint ("use duckdb:PATH or postgres://…"): the URL was right, the file is what is wrong.
      assert.match(e.hint ?? '', /not a DuckDB database.*not changed: move it aside/s);
      return true;
    });
    assert.equal(duckDbUsers(file), 0);
  });

  // DuckDB opens some files that are not its own as databases: a CSV, JSON or Parquet file by its name as an empty
  // in-memory database (every write lost, silently, at the close), a SQLite file through an extension it downloads
  // (and would then write into another program's file).
  it("another program's file DuckDB would open as a database (.csv, .json, SQLite): refused, the file not changed", async () => {
    const dir = scratchDir('duck-foreign-');
    const sqliteHeader = Buffer.alloc(4096);
    sqliteHeader.write('SQLite format 3\0', 'latin1');
    const files = {
      'prices.csv': Buffer.from('time,price\n1,2\n'),
      'store.json': Buffer.from('{"pairs": ["BTC/USD"]}\n'),
      'events.ndjson': Buffer.from('{"a": 1}\n'),
      'app.sqlite': sqliteHeader,
    };
    for (const [name, bytes] of Object.entries(files)) {
      const file = join(dir, name);
      writeFileSync(file, bytes);
      await assert.rejects(openDuckDb(file), (e: CryptocastError) => {
        assert.equal(e.code, ERR.STORE_URL.code, name);
        assert.match(e.message, new RegExp(name.replace('.', '\\.')));
        assert.match(e.hint ?? '', /not a DuckDB database.*not changed: move it aside/s, name);
        return true;
      });
      assert.deepEqual(readFileSync(file), bytes, name);
      assert.equal(duckDbUsers(file), 0);
    }
  });

  // The .wal holds the writes not yet checkpointed into the file: the only copy of them. A database file moved away
  // without it (a backup, a copy to another disk) left it behind, and the next open made a new database there and
  // deleted it.
  it('a .wal without its database file: refused, the .wal kept (the only copy of those writes)', async () => {
    const dir = scratchDir('duck-orphan-wal-');
    const file = join(dir, 'store.duckdb');
    const db = await DuckDBInstance.create(file);
    const c = await db.connect();
    await c.run('PRAGMA disable_checkpoint_on_shutdown');
    await c.run('CREATE TABLE t AS SELECT range AS x FROM range(1000)');
    c.closeSync();
    db.closeSync();
    const wal = readFileSync(`${file}.wal`);
    assert.ok(wal.length > 0);
    renameSync(file, join(dir, 'moved.duckdb'));
    await assert.rejects(openDuckDb(file), (e: CryptocastError) => {
      assert.equal(e.code, ERR.STORE_URL.code);
      assert.match(e.message, /store\.duckdb\.wal/);
      assert.match(e.hint ?? '', /put it back beside its database file/);
      return true;
    });
    assert.deepEqual(readFileSync(`${file}.wal`), wal);
    assert.equal(existsSync(file), false);
    assert.equal(duckDbUsers(file), 0);
  });

  it('a DuckDB file cut short: CC_ERR_STORE_URL naming it, the hint says it is damaged; the file is not changed', async () => {
    const file = join(scratchDir('duck-'), 'cut.duckdb');
    // Made and closed (checkpointed) here, outside openDuckDb, whose last close checkpoints in the background.
    const db = await DuckDBInstance.create(file);
    const c = await db.connect();
    await c.run('CREATE TABLE t AS SELECT range AS x FROM range(200000)');
    c.closeSync();
    db.closeSync();
    truncateSync(file, 100_000);
    const before = readFileSync(file);
    await assert.rejects(openDuckDb(file), (e: CryptocastError) => {
      assert.equal(e.code, ERR.STORE_URL.code);
      assert.match(e.message, /cut\.duckdb/);
      assert.match(e.hint ?? '', /damaged or cut short.*not changed: move it aside/s);
      return true;
    });
    assert.deepEqual(readFileSync(file), before);
  });

  /**
   * A DuckDB file as another DuckDB version would have written it: its main header (the first 4 KiB) says storage
   * version `storage` and writer `writer`, under a checksum DuckDB accepts (so DuckDB reads the header, and refuses
   * the version rather than the bytes). The layout is DuckDB's MainHeader: a checksum (8 bytes), "DUCK", the storage
   * version (uint64), four flags (uint64), the writer's version text (32 bytes).
   */
  async function duckDbFileOfVersion(file: string, storage: number, writer: string): Promise<void> {
    const db = await DuckDBInstance.create(file);
    const c = await db.connect();
    await c.run('CREATE TABLE t AS SELECT 1 AS x');
    c.closeSync();
    db.closeSync();
    const bytes = readFileSync(file);
    bytes.writeBigUInt64LE(BigInt(storage), 12);
    bytes.fill(0, 52, 84).write(writer, 52, 'latin1');
    // DuckDB's block checksum: 5381 xor each 8-byte word times 0xbf58476d1ce4e5b9 (mod 2^64).
    let sum = 5381n;
    for (let i = 8; i < 4096; i += 8)
      sum ^= BigInt.asUintN(64, bytes.readBigUInt64LE(i) * 0xbf58476d1ce4e5b9n);
    bytes.writeBigUInt64LE(sum, 0);
    writeFileSync(file, bytes);
  }

  it('a file of a newer DuckDB: CC_ERR_STORE_URL naming both DuckDB versions, the hint says what to do; not changed', async () => {
    const file = join(scratchDir('duck-newer-'), 'newer.duckdb');
    await duckDbFileOfVersion(file, 69, 'v9.9.0');
    const before = readFileSync(file);
    await assert.rejects(openDuckDb(file), (e: CryptocastError) => {
      assert.equal(e.code, ERR.STORE_URL.code);
      assert.match(e.message, /newer\.duckdb/);
      assert.match(e.message, /written by DuckDB v9\.9\.0 \(storage version 69\)/);
      assert.match(
        e.message,
        new RegExp(`this cryptocast's DuckDB ${duckDbVersion().replaceAll('.', '\\.')}`),
      );
      assert.match(e.hint ?? '', /not changed.*the cryptocast version that wrote it.*--store duckdb:PATH/s);
      assert.doesNotMatch(e.hint ?? '', /postgres:\/\//, 'not the URL forms: the URL is right');
      return true;
    });
    assert.deepEqual(readFileSync(file), before);
  });

  it('a file of an old DuckDB: CC_ERR_STORE_URL naming its DuckDB (as DuckDB tells it), the hint how to move it', async () => {
    const file = join(scratchDir('duck-older-'), 'older.duckdb');
    await duckDbFileOfVersion(file, 39, '');
    await assert.rejects(openDuckDb(file), (e: CryptocastError) => {
      assert.equal(e.code, ERR.STORE_URL.code);
      assert.match(e.message, /written by DuckDB version v0\.6\.0 or v0\.6\.1 \(storage version 39\)/);
      assert.match(e.hint ?? '', /not changed.*EXPORT DATABASE.*IMPORT DATABASE/s);
      return true;
    });
  });

  it('one worker thread unless CRYPTOCAST_DUCKDB_THREADS says otherwise; a bad value names the variable', async () => {
    const threadsOf = async (file: string) => {
      const session = await openDuckDb(file);
      try {
        const r = await session.conn.runAndReadAll("SELECT current_setting('threads') AS t");
        return Number(r.getRowObjects()[0]!.t);
      } finally {
        await session.close();
      }
    };
    const dir = scratchDir('cc-duck-threads-');
    const before = process.env.CRYPTOCAST_DUCKDB_THREADS;
    try {
      delete process.env.CRYPTOCAST_DUCKDB_THREADS;
      assert.equal(await threadsOf(join(dir, 'a.duckdb')), 1);
      process.env.CRYPTOCAST_DUCKDB_THREADS = '2';
      assert.equal(await threadsOf(join(dir, 'b.duckdb')), 2);
      process.env.CRYPTOCAST_DUCKDB_THREADS = 'many';
      await assert.rejects(threadsOf(join(dir, 'c.duckdb')), (e: CryptocastError) => {
        assert.equal(e.code, ERR.CONFIG.code);
        assert.match(e.message, /CRYPTOCAST_DUCKDB_THREADS must be a positive integer/);
        return true;
      });
    } finally {
      if (before === undefined) delete process.env.CRYPTOCAST_DUCKDB_THREADS;
      else process.env.CRYPTOCAST_DUCKDB_THREADS = before;
    }
  });
});
