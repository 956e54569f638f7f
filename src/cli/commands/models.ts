import { readdir } from 'node:fs/promises';
import { ERR, fail, UsageError } from '../../core/errors.ts';
import { whyUnservable } from '../../inference/model-holder.ts';
import { openRegistry } from '../../training/registry/open.ts';
import {
  AliasMovedError,
  finishedVersions,
  type ModelCard,
  type ModelRegistry,
} from '../../training/registry/registry.ts';

/** `cryptocast models list|show|promote|rollback`: read and manage the registry by hand. */
interface Flags {
  registry: string;
  name: string;
  json?: boolean;
  reason?: string;
}

async function withRegistry<T>(opts: Flags, fn: (r: ModelRegistry) => Promise<T>): Promise<T> {
  const r = await openRegistry(opts.registry);
  try {
    return await fn(r);
  } finally {
    await r.close();
  }
}

const pct = (x: unknown) => (typeof x === 'number' ? `${(x * 100).toFixed(3)}%` : '—');
const day = (t: number) => new Date(t).toISOString().slice(0, 10);

/** Skill over persistence of each pair, from the card's walk-forward summary. */
function pairSkills(card: ModelCard): Record<string, number> {
  const perPair = (card.summary.per_pair ?? {}) as Record<string, { skill?: number }>;
  return Object.fromEntries(Object.entries(perPair).map(([p, s]) => [p, s.skill ?? Number.NaN]));
}

/** What the gate decided for a version, as `models list` shows it. */
function gateVerdict(card: ModelCard, finished: boolean): string {
  if (!finished) return 'incomplete: its run stopped before an alias named it (no gate verdict applied)';
  if (card.gate === undefined) return 'no gate verdict';
  return `gate ${card.gate.promoted ? 'passed' : 'failed'}`;
}

/**
 * Why a local registry lists nothing, when it is not simply empty: a folder that does not exist (a typo'd --registry
 * read as an empty registry) or one that holds other models (a typo'd --name). MLflow answers for itself.
 */
async function whyEmpty(r: ModelRegistry, name: string): Promise<string> {
  if (r.kind !== 'local') return '';
  const names = await readdir(r.location, { withFileTypes: true }).catch(() => undefined);
  if (names === undefined)
    return ": no such folder (give the registry's folder: --registry or CRYPTOCAST_REGISTRY; train one: cryptocast train, or bash scripts/price-model.sh)";
  const others = names
    .filter((d) => d.isDirectory() && d.name !== name && !d.name.startsWith('.'))
    .map((d) => d.name);
  return others.length > 0 ? `: it holds ${others.sort().join(', ')} (--name, or CRYPTOCAST_MODEL_NAME)` : '';
}

export async function listCommand(opts: Flags): Promise<void> {
  await withRegistry(opts, async (r) => {
    const cards = await r.list(opts.name);
    const champion = await r.alias(opts.name, 'champion');
    const challenger = await r.alias(opts.name, 'challenger');
    // A version whose run was stopped after registering it, before moving an alias, has the gate's verdict on its card
    // but the verdict was never applied: it is shown as incomplete, not as "gate passed" (or failed).
    const finished = await finishedVersions(r, opts.name);
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify({ champion: champion ?? null, challenger: challenger ?? null, versions: cards.map((c) => ({ version: c.version, createdAt: c.createdAt, codeVersion: c.codeVersion, trainingWindow: c.trainingWindow, skill: pairSkills(c), finished: finished.has(c.version), promoted: finished.has(c.version) ? (c.gate?.promoted ?? null) : null })) }, null, 2)}\n`,
      );
      return;
    }
    if (cards.length === 0) {
      process.stdout.write(`no versions of ${opts.name} in ${r.location}${await whyEmpty(r, opts.name)}\n`);
      return;
    }
    process.stdout.write(`${opts.name} in ${r.location}\n`);
    for (const c of cards) {
      const tag = c.version === champion ? ' champion' : c.version === challenger ? ' challenger' : '';
      const skills = Object.entries(pairSkills(c))
        .map(([p, s]) => `${p} ${pct(s)}`)
        .join(', ');
      process.stdout.write(
        `  v${String(c.version).padEnd(4)}${tag.padEnd(12)} created ${new Date(c.createdAt).toISOString().slice(0, 19)}Z · data ${day(c.trainingWindow.from)} → ${day(c.trainingWindow.to)} · skill ${skills} · ${gateVerdict(c, finished.has(c.version))}\n`,
      );
    }
  });
}

export async function showCommand(version: string | undefined, opts: Flags): Promise<void> {
  await withRegistry(opts, async (r) => {
    const v = await resolveVersion(r, opts.name, version ?? 'champion');
    const card = await r.get(opts.name, v);
    if (!card) throw fail(ERR.MODEL_VERSION, `${opts.name} has no version ${v}`);
    process.stdout.write(`${JSON.stringify(card, null, 2)}\n`);
  });
}

export async function resolveVersion(r: ModelRegistry, name: string, text: string): Promise<number> {
  if (text === 'champion' || text === 'challenger') {
    const v = await r.alias(name, text);
    if (v === undefined) throw fail(ERR.MODEL_VERSION, `${name} has no ${text}`);
    return v;
  }
  const v = Number(text.replace(/^v/, ''));
  if (!Number.isInteger(v) || v < 1)
    throw new UsageError(`not a version: "${text}" (use e.g. 3, v3, champion)`);
  return v;
}

/**
 * Makes a version the champion by hand. The two rules a person cannot override: a model that did worse than
 * persistence on any pair (skill ≤ 0 in its walk-forward) never becomes champion, nor one the predictor cannot load
 * (columns it does not have, damaged or missing files).
 */
export async function promoteCommand(version: string, opts: Flags): Promise<void> {
  await withRegistry(opts, async (r) => {
    const v = await resolveVersion(r, opts.name, version);
    const card = await r.get(opts.name, v);
    if (!card) throw fail(ERR.MODEL_VERSION, `${opts.name} has no version ${v}`);
    const worse = Object.entries(pairSkills(card)).filter(([, s]) => !(s > 0));
    if (worse.length > 0)
      throw fail(
        ERR.PROMOTION,
        `v${v} is no better than persistence on ${worse.map(([p, s]) => `${p} (skill ${pct(s)})`).join(', ')}: it cannot be champion`,
      );
    // The predictor must be able to load it, or after the next restart nothing is served.
    const unservable = await whyUnservable(r, opts.name, v);
    if (unservable !== undefined)
      throw fail(ERR.UNSERVABLE, `v${v} cannot be champion: the predictor cannot serve it: ${unservable}`);
    const before = await r.alias(opts.name, 'champion');
    await r.setAlias(opts.name, 'champion', v, opts.reason ?? 'promoted by hand (cryptocast models promote)');
    process.stdout.write(`champion: v${v}${before ? ` (was v${before})` : ''}\n`);
  });
}

/**
 * Points the champion back at the one before it. Rollbacks are undone steps, not new ones: after v1 → v2 → v3,
 * two rollbacks lead to v2 and then v1 (not back and forth between v3 and v2). Refused, as by `promote`, when the
 * predictor cannot load that version.
 */
export async function rollbackCommand(opts: Flags): Promise<void> {
  await withRegistry(opts, async (r) => {
    const stack: number[] = [];
    for (const c of await r.aliasHistory(opts.name)) {
      if (c.alias !== 'champion' || c.version === null) continue;
      if (c.reason.startsWith('rollback')) stack.pop();
      else stack.push(c.version);
    }
    const current = await r.alias(opts.name, 'champion');
    if (current === undefined) throw fail(ERR.MODEL_VERSION, `${opts.name} has no champion to roll back`);
    // The champion is the top of the stack, recorded or not: a change whose history entry could not be written
    // (MLflow moves the alias, then tags the change) would otherwise make this skip a version back — or, after an
    // unrecorded rollback, put back the model rolled back from. Recorded deeper: the stack is cut back to it.
    const at = stack.lastIndexOf(current);
    if (at < 0) stack.push(current);
    else stack.length = at + 1;
    const target = stack.at(-2);
    if (target === undefined)
      throw fail(
        ERR.MODEL_VERSION,
        `v${current} is the first champion of ${opts.name}: there is nothing to roll back to`,
      );
    // As `promote`: a version that served once may not load now (a file damaged since, a feature set changed since).
    // Made champion, the predictor would fail to load it and keep serving the version rolled back from — the rollback
    // never taking effect — and serve nothing after a restart.
    const unservable = await whyUnservable(r, opts.name, target);
    if (unservable !== undefined)
      throw fail(
        ERR.UNSERVABLE,
        `cannot roll back to v${target}: the predictor cannot serve it: ${unservable} (v${current} stays champion)`,
      );
    // Only from the champion it was computed from: a promotion landing meanwhile (the trainer's, during the check
    // above) was otherwise dropped without a word, the rollback "from" a version no longer serving.
    try {
      await r.setAlias(
        opts.name,
        'champion',
        target,
        `rollback from v${current}${opts.reason ? `: ${opts.reason}` : ''}`,
        { version: current },
      );
    } catch (err) {
      if (!(err instanceof AliasMovedError)) throw err;
      const now = err.current === undefined ? 'none' : `v${err.current}`;
      throw fail(
        ERR.MODEL_VERSION,
        `the champion changed to ${now} while rolling back from v${current}: nothing changed (run models rollback again if still wanted)`,
      );
    }
    process.stdout.write(`champion: v${target} (rolled back from v${current})\n`);
  });
}
