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
  // Only the command's text: the test runner's own reports (serialised, as bytes) still go out, or a test that ran
  // before this capture went unreported.
  process.stdout.write = ((s: string | Uint8Array, ...rest: never[]) => {
    if (typeof s !== 'string') return write(s, ...rest);
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

describe('models list: an empty answer says why', () => {
  it('a registry folder that does not exist is named as such, not as a registry without versions', async () => {
    const root = `${scratchDir('cc-reg-')}/typo`;
    assert.match(
      await list(root),
      /no versions of price in \S*\/typo: no such folder \(give the registry's folder: --registry or CRYPTOCAST_REGISTRY; train one: cryptocast train, or bash scripts\/price-model\.sh\)\n/,
    );
  });

  it('a registry that holds other models names them (a --name typo, or CRYPTOCAST_MODEL_NAME)', async () => {
    const root = scratchDir('cc-reg-');
    const registry = new LocalRegistry(root);
    await registerModel(registry, 'cryptocast-price', ['rsi_14'], {
      model: stumpModel(1, []),
      p10: stumpModel(1, []),
      p90: stumpModel(1, []),
    });
    assert.match(
      await list(root),
      /no versions of price in \S*: it holds cryptocast-price \(--name, or CRYPTOCAST_MODEL_NAME\)\n/,
    );
  });
});
