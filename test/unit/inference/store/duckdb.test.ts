import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type CryptocastError, ERR } from '../../../../src/core/errors.ts';
import { openPredictionsStore } from '../../../../src/inference/store/open.ts';
import { predictionsStoreContract } from '../../../support/predictions-store-contract.ts';
import { scratchDir } from '../../../support/scratch.ts';

describe('DuckDB predictions store', () => {
  const file = join(scratchDir('ps-'), 'predictions.duckdb');
  predictionsStoreContract(() => openPredictionsStore(`duckdb:${file}`));

  it('a file held by another process: CC_ERR_STORE_LOCKED, with the ways out in its hint', async () => {
    const held = join(scratchDir('ps-lock-'), 'p.duckdb');
    const open = join(import.meta.dirname, '..', '..', '..', '..', 'src', 'inference', 'store', 'open.ts');
    const script = `const { openPredictionsStore } = await import(${JSON.stringify(open)});
      await openPredictionsStore(${JSON.stringify(`duckdb:${held}`)});
      process.stdout.write('open\\n');
      setTimeout(() => {}, 60_000);`;
    const child = spawn(
      process.execPath,
      ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => d.toString().includes('open') && resolve());
        child.once('exit', (code) => reject(new Error(`holder exited with ${code}`)));
      });
      await assert.rejects(openPredictionsStore(`duckdb:${held}`), (err: CryptocastError) => {
        assert.equal(err.code, ERR.STORE_LOCKED.code);
        assert.match(err.hint ?? '', /one process .*its own file/s);
        return true;
      });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
