import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { listCommand } from '../../../src/cli/commands/models.ts';
import { LocalRegistry } from '../../../src/training/registry/local.ts';
import type { ModelRegistry } from '../../../src/training/registry/registry.ts';
import { registerModel, stumpModel } from '../../support/champion.ts';
import { sampleModel } from '../../support/registry-contract.ts';
import { scratchDir } from '../../support/scratch.ts';

/** Runs `models list` (text or --json), its stdout captured. */
async function list(root: string, json = false): Promise<string> {
  const out: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((s: string) => {
    out.push(s);
    return true;
  }) as typeof process.stdout.write;
  try {
    await listCommand({ registry: root, name: 'price', json });
  } finally {
    process.stdout.write = write;
  }
  return out.join('');
}

/** Registers a version whose card says the gate passed it, as a training run does before it moves an alias. */
async function gatePassed(registry: ModelRegistry): Promise<number> {
  const s = sampleModel('price', 'x');
  const card = await registry.register(
    { ...s.card, gate: { promoted: true, reasons: ['pass: all'] } },
    s.dir,
  );
  return card.version;
}

describe('models list: what happened to each version', () => {
  it('a version registered by a run stopped before it moved an alias is incomplete, not "gate passed"', async () => {
    const root = scratchDir('cc-reg-');
    const registry = new LocalRegistry(root);
    const files = { model: stumpModel(2, []), p10: stumpModel(2, []), p90: stumpModel(2, []) };
    await registerModel(registry, 'price', ['rsi_14', 'ret_1m'], files); // v1 champion, no gate on its card
    const promoted = await gatePassed(registry); // v2: its run finished, champion
    await registry.setAlias('price', 'champion', promoted, 'promoted by the gate');
    const killed = await gatePassed(registry); // v3: its run was killed before moving an alias

    const lines = (await list(root)).split('\n');
    const line = (v: number) => lines.find((l) => l.startsWith(`  v${v} `)) ?? '';
    assert.match(line(1), /· no gate verdict$/);
    assert.match(line(promoted), /champion .* · gate passed$/);
    assert.match(
      line(killed),
      /· incomplete: its run stopped before an alias named it \(no gate verdict applied\)$/,
    );

    const json = JSON.parse(await list(root, true)) as {
      versions: { version: number; finished: boolean; promoted: boolean | null }[];
    };
    assert.deepEqual(
      json.versions.map((v) => [v.version, v.finished, v.promoted]),
      [
        [1, true, null],
        [promoted, true, true],
        [killed, false, null],
      ],
    );
  });
});
