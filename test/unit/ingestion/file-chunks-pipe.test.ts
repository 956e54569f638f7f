import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { fileChunks } from '../../../src/ingestion/files/bytes.ts';
import { scratchDir } from '../../support/scratch.ts';

/**
 * A trade file may be a pipe (`candles --input` on a FIFO or /dev/stdin). Its compression was told by a read at
 * position 0 aside, which a pipe refuses (ESPIPE: every such command failed) and which would have taken the pipe's
 * first bytes away from what follows. Now it is told from the stream's own first bytes, which are kept.
 */
async function throughPipe(content: Buffer, pieces: number): Promise<Buffer> {
  const fifo = join(scratchDir('cc-fifo-'), 'trades');
  execFileSync('mkfifo', [fifo]);
  // The writer sends the content in pieces (the first shorter than the 4 magic bytes when pieces allow).
  const writer = createWriteStream(fifo);
  const writing = (async () => {
    // Bounds: a first piece of 1 byte, then the rest in `pieces - 1` parts.
    const rest = content.length - 1;
    const bounds = [
      0,
      ...Array.from({ length: pieces }, (_, k) => 1 + Math.floor((k * rest) / (pieces - 1))),
    ];
    for (let k = 0; k + 1 < bounds.length; k++) {
      const piece = content.subarray(bounds[k], bounds[k + 1]);
      await new Promise<void>((r) => writer.write(piece, () => r()));
    }
    await new Promise<void>((r) => writer.end(r));
  })();
  const out: Buffer[] = [];
  for await (const chunk of fileChunks(fifo)) out.push(Buffer.from(chunk));
  await writing;
  return Buffer.concat(out);
}

describe('fileChunks on a pipe', () => {
  const text = Buffer.from(
    'exchange,pair,tradeId,tradeTs,price,qty,side\nkraken,BTC/USD,1,1762795433000,100,1,buy\n',
  );

  it('reads plain text whole, its first bytes included', async () => {
    assert.deepEqual(await throughPipe(text, 4), text);
  });

  it('tells gzip from the stream’s first bytes and decompresses it', async () => {
    assert.deepEqual(await throughPipe(gzipSync(text), 3), text);
  });
});
