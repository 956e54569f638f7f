import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { localPath, parseChecksum, planArchive } from '../../../src/data/binance-archive.ts';

describe('Binance archive plan', () => {
  const now = Date.UTC(2026, 11, 4, 15); // 2026-12-04 15:00 UTC

  it('takes one monthly zip per ended month, and daily zips up to yesterday for the current one', () => {
    const files = planArchive({ symbols: ['BTCUSDT'], fromMonth: '2026-10', toMonth: '2026-12', now });
    assert.deepEqual(
      files.map((f) => f.path.split('/').pop()),
      [
        'BTCUSDT-1m-2026-10.zip',
        'BTCUSDT-1m-2026-11.zip',
        'BTCUSDT-1m-2026-12-01.zip',
        'BTCUSDT-1m-2026-12-02.zip',
        'BTCUSDT-1m-2026-12-03.zip',
      ],
    );
    assert.equal(files[0]!.path, 'data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2026-10.zip');
    assert.equal(files[2]!.path, 'data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2026-12-01.zip');
  });

  it('daily on request: every day of each month, for each symbol; nothing of the future', () => {
    const files = planArchive({
      symbols: ['BTCUSDT', 'ETHUSDT'],
      fromMonth: '2022-02',
      toMonth: '2022-02',
      period: 'daily',
      now,
    });
    assert.equal(files.length, 56);
    assert.equal(files[27]!.date, '2022-02-28');
    assert.equal(files[28]!.symbol, 'ETHUSDT');
    assert.equal(
      planArchive({ symbols: ['BTCUSDT'], fromMonth: '2027-01', toMonth: '2027-02', now }).length,
      0,
    );
  });

  it('rejects months that are not months, and ranges that run backwards', () => {
    assert.throws(() => planArchive({ symbols: ['BTCUSDT'], fromMonth: '2022-13', toMonth: '2022-13' }), {
      code: 'CC_ERR_USAGE',
    });
    assert.throws(
      () => planArchive({ symbols: ['BTCUSDT'], fromMonth: '2022-05', toMonth: '2022-04' }),
      /before/,
    );
  });

  it('keeps the archive layout under the data folder', () => {
    const [f] = planArchive({ symbols: ['BTCUSDT'], fromMonth: '2022-05', toMonth: '2022-05', now });
    assert.equal(localPath('/d', f!), '/d/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2022-05.zip');
  });
});

describe('published checksums', () => {
  const sum = 'a'.repeat(64);
  it('reads `<sha256>  <name>` for the file it names, and nothing else', () => {
    assert.equal(parseChecksum(`${sum}  BTCUSDT-1m-2022-05.zip\n`, 'BTCUSDT-1m-2022-05.zip'), sum);
    assert.equal(
      parseChecksum(`${sum.toUpperCase()} *BTCUSDT-1m-2022-05.zip`, 'BTCUSDT-1m-2022-05.zip'),
      sum,
    );
    assert.equal(parseChecksum(`${sum}  ETHUSDT-1m-2022-05.zip`, 'BTCUSDT-1m-2022-05.zip'), undefined);
    assert.equal(parseChecksum('<html>Not Found</html>', 'BTCUSDT-1m-2022-05.zip'), undefined);
    assert.equal(
      parseChecksum(`${sum.slice(1)}  BTCUSDT-1m-2022-05.zip`, 'BTCUSDT-1m-2022-05.zip'),
      undefined,
    );
  });
});
