import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../support/cli.ts';
import { SHARED_DATA } from '../support/data.ts';
import { freePort } from '../support/ports.ts';
import { scratchDir } from '../support/scratch.ts';
import { waitFor } from '../support/wait.ts';

/**
 * `cryptocast data fetch` against a local server laid out as data.binance.vision, serving the real daily zips of
 * the shared recording with their SHA-256 `.CHECKSUM` files, and the faults a download meets: a corrupted body
 * (once, then always), a day the archive does not have (404), and a connection cut in the middle of a file.
 */
const KLINES = join(SHARED_DATA, 'binance-spot-1m-btcusdt-ethusdt-daily-2022-01_2023-02', 'BTCUSDT');
const PREFIX = '/data/spot/daily/klines/BTCUSDT/1m/';

interface Archive {
  url: string;
  server: Server;
  /** Requests for zips (not checksums), by file name, with their Range header. */
  requests: { name: string; range: string | undefined }[];
  /** name → how the next requests for it misbehave. */
  faults: Map<string, ('corrupt' | 'cut')[]>;
  /** Always corrupt (the download can never succeed). */
  alwaysCorrupt: Set<string>;
  missing: Set<string>;
  /** For a cut: true once the client has stored some of the bytes sent (then the connection is cut). */
  received?: (name: string) => boolean;
}

async function startArchive(): Promise<Archive> {
  const a: Omit<Archive, 'url' | 'server'> = {
    requests: [],
    faults: new Map(),
    alwaysCorrupt: new Set(),
    missing: new Set(),
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (!path.startsWith(PREFIX)) return void res.writeHead(404).end();
    const file = path.slice(PREFIX.length);
    const isSum = file.endsWith('.CHECKSUM');
    const name = isSum ? file.slice(0, -'.CHECKSUM'.length) : file;
    const local = join(KLINES, name);
    if (a.missing.has(name) || !existsSync(local)) return void res.writeHead(404).end('Not Found');
    const bytes = readFileSync(local);
    if (isSum) {
      const sum = createHash('sha256').update(bytes).digest('hex');
      return void res.writeHead(200, { 'content-type': 'text/plain' }).end(`${sum}  ${name}\n`);
    }
    const range = req.headers.range;
    a.requests.push({ name, range });
    const fault = a.alwaysCorrupt.has(name) ? 'corrupt' : a.faults.get(name)?.shift();
    let body = bytes;
    if (fault === 'corrupt') {
      body = Buffer.from(bytes);
      body[Math.floor(body.length / 2)]! ^= 0xff;
    }
    const m = range ? /^bytes=(\d+)-$/.exec(range) : null;
    const start = m ? Number(m[1]) : 0;
    if (start >= body.length) return void res.writeHead(416).end();
    const status = m ? 206 : 200;
    const part = body.subarray(start);
    res.writeHead(status, {
      'content-type': 'application/zip',
      'content-length': String(part.length),
      ...(m ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
    });
    if (fault === 'cut') {
      // Half the file, then the connection is cut — once the client has stored some of it (a fetch body drops what it
      // had queued but not yet read when its connection fails: cut too early, there is nothing to resume from).
      res.write(part.subarray(0, Math.floor(part.length / 2)));
      void waitFor('the client to store part of the cut file', () => a.received?.(name) ?? true, Boolean, {
        timeoutMs: 30_000,
        everyMs: 10,
      })
        .catch(() => {}) // cut anyway: the resume assertion then says what happened
        .finally(() => res.socket?.destroy());
      return;
    }
    res.end(part);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // The same object the handler reads (a copy would not see `received` set by a test).
  return Object.assign(a, { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
}

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('cryptocast data fetch against a local Binance archive', { skip: !existsSync(KLINES) }, () => {
  let archive: Archive;
  let dir: string;
  const localDir = () => join(dir, 'spot', 'daily', 'klines', 'BTCUSDT', '1m');

  before(async () => {
    archive = await startArchive();
    dir = scratchDir('cc-fetch-');
  });
  after(async () => {
    archive.server.closeAllConnections();
    await new Promise((r) => archive.server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const fetchMay = (extra: string[] = []) =>
    runCli(
      [
        'data',
        'fetch',
        '--from',
        '2022-05',
        '--symbols',
        'BTCUSDT',
        '--period',
        'daily',
        '--dir',
        dir,
        '--base-url',
        archive.url,
        '--json',
        ...extra,
      ],
      { CRYPTOCAST_LOG_LEVEL: 'warn' },
    );

  test('downloads every day, verified; a corrupted body is fetched again, a cut one resumed, a missing day reported', async () => {
    archive.faults.set('BTCUSDT-1m-2022-05-03.zip', ['corrupt']);
    archive.faults.set('BTCUSDT-1m-2022-05-05.zip', ['cut']);
    archive.received = (name) => {
      const part = join(localDir(), `${name}.part`);
      return existsSync(part) && statSync(part).size > 0;
    };
    archive.missing.add('BTCUSDT-1m-2022-05-04.zip');
    const run = fetchMay();
    const summary = await run.waitFor((e) => e.event === 'done', 180_000);
    assert.equal(await run.exited, 0, run.stderr());
    assert.equal(summary.files, 31);
    assert.equal(summary.fetched, 30);
    assert.deepEqual(summary.missing, ['BTCUSDT-1m-2022-05-04.zip']);
    // Every file is byte-for-byte the recording's.
    const got = readdirSync(localDir()).filter((f) => f.endsWith('.zip'));
    assert.equal(got.length, 30);
    for (const f of got) assert.equal(sha(join(localDir(), f)), sha(join(KLINES, f)), f);
    assert.equal(
      readdirSync(localDir()).filter((f) => f.endsWith('.part')).length,
      0,
      'no partial file left',
    );
    // The corrupted day was downloaded twice, the cut one continued where it stopped (a Range request).
    assert.equal(archive.requests.filter((r) => r.name === 'BTCUSDT-1m-2022-05-03.zip').length, 2);
    const cut = archive.requests.filter((r) => r.name === 'BTCUSDT-1m-2022-05-05.zip');
    assert.equal(cut.length, 2);
    assert.match(
      cut[1]!.range ?? '',
      /^bytes=[1-9]\d*-$/,
      'the second request resumes from the bytes it had',
    );
    assert.ok(Number(summary.retries) >= 2);
  });

  test('a second run downloads nothing: every file is already here and checks out', async () => {
    const before = archive.requests.length;
    const run = fetchMay();
    const summary = await run.waitFor((e) => e.event === 'done', 120_000);
    assert.equal(await run.exited, 0, run.stderr());
    assert.equal(summary.alreadyHere, 30);
    assert.equal(summary.fetched, 0);
    assert.equal(archive.requests.length, before, 'no zip requested again');
  });

  test('a body corrupted twice fails with the file name, and the file is deleted', async () => {
    const name = 'BTCUSDT-1m-2022-06-02.zip';
    archive.alwaysCorrupt.add(name);
    const run = runCli(
      [
        'data',
        'fetch',
        '--from',
        '2022-06',
        '--symbols',
        'BTCUSDT',
        '--period',
        'daily',
        '--dir',
        dir,
        '--base-url',
        archive.url,
        '--concurrency',
        '1',
      ],
      { CRYPTOCAST_LOG_LEVEL: 'warn' },
    );
    const code = await run.exited;
    assert.equal(code, 1, run.stderr());
    assert.match(run.stderr(), /CC_ERR_CHECKSUM/);
    assert.match(run.stderr(), new RegExp(`${name}: sha256 [0-9a-f]{64} does not match the published`));
    assert.equal(existsSync(join(localDir(), name)), false);
    assert.equal(existsSync(join(localDir(), `${name}.part`)), false);
    // The days before it (one at a time) are kept for the next run.
    assert.ok(existsSync(join(localDir(), 'BTCUSDT-1m-2022-06-01.zip')));
  });

  test('an archive that cannot be reached: a clear error after the retries, nothing half-written', async () => {
    const run = runCli(
      [
        'data',
        'fetch',
        '--from',
        '2022-07',
        '--symbols',
        'BTCUSDT',
        '--dir',
        dir,
        '--base-url',
        `http://127.0.0.1:${await freePort()}`, // nothing listens: connection refused
        '--attempts',
        '3',
      ],
      { CRYPTOCAST_LOG_LEVEL: 'warn' },
    );
    assert.equal(await run.exited, 1, run.stderr());
    assert.match(run.stderr(), /CC_ERR_DOWNLOAD/);
    assert.match(run.stderr(), /ECONNREFUSED/);
    assert.match(run.stderr(), /after 3 attempts/);
    assert.equal(
      readdirSync(dir, { recursive: true }).filter((f) => String(f).includes('2022-07')).length,
      0,
    );
  });

  test('run --replay reads what was fetched when there are no recordings', async () => {
    const empty = scratchDir('cc-noshared-');
    try {
      const run = runCli(
        [
          'run',
          '--replay',
          '2022-05-09',
          '--no-news',
          '--port',
          '0',
          '--store',
          `duckdb:${join(empty, 'store.duckdb')}`,
          '--json',
        ],
        {
          CRYPTOCAST_SHARED_DATA: empty,
          CRYPTOCAST_DATA_DIR: dir,
          CRYPTOCAST_REGISTRY: join(empty, 'registry'),
          CRYPTOCAST_LOG_LEVEL: 'warn',
        },
      );
      const done = await run.waitFor((e) => e.event === 'done', 240_000);
      assert.equal(await run.exited, 0, run.stderr());
      // Only BTC was fetched: the replay plays it and says what it lacks.
      assert.equal(done.replayedCandles, 1440);
      assert.deepEqual(done.missingSymbols, ['ETHUSDT']);
      assert.match(run.stderr(), /no klines of ETHUSDT for this range/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  test('run without the trade recordings replays the last two days that were fetched', async () => {
    const empty = scratchDir('cc-noshared-');
    try {
      const run = runCli(
        ['run', '--no-news', '--port', '0', '--store', `duckdb:${join(empty, 'store.duckdb')}`, '--json'],
        {
          CRYPTOCAST_SHARED_DATA: empty,
          CRYPTOCAST_DATA_DIR: dir,
          CRYPTOCAST_REGISTRY: join(empty, 'registry'),
          CRYPTOCAST_LOG_LEVEL: 'warn',
        },
      );
      const done = await run.waitFor((e) => e.event === 'done', 240_000);
      assert.equal(await run.exited, 0, run.stderr());
      // May 2022 and the first day of June were fetched (BTC only): the last two days of them.
      assert.equal(done.replayedCandles, 2 * 1440);
      assert.equal(done.featureRows, 2 * 1440);
      assert.match(run.stderr(), /the trade recordings are not here: replaying .* 2022-05-31\.\.2022-06-01/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
