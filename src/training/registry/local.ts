import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { CryptocastError } from '../../core/errors.ts';
import {
  type Alias,
  type AliasChange,
  AliasMovedError,
  MODEL_NAME,
  type ModelCard,
  ModelCardSchema,
  type ModelRegistry,
  type NewModelCard,
  noSuchVersion,
  RegistryError,
  RegistryFileError,
} from './registry.ts';

/**
 * The registry as a directory (the embedded default):
 *
 *   <root>/<name>/versions/<n>/card.json + artifact files      one folder per version, never changed once written
 *   <root>/<name>/aliases.json                                 { champion, challenger, history: [...] }
 *
 * A version is staged in a temporary folder and renamed into place, so a crash never leaves half a version, and
 * two trainers registering at once get different numbers (the rename fails for the one that lost). Alias changes
 * take a lock (an exclusive mkdir) and replace aliases.json atomically; a conditional one (`ifCurrent`) compares
 * under that lock.
 */
interface AliasFile {
  champion: number | null;
  challenger: number | null;
  history: AliasChange[];
}

export class LocalRegistry implements ModelRegistry {
  readonly kind = 'local' as const;
  readonly location: string;
  private readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.location = this.root;
  }

  /**
   * Runs a registry operation with the file system's errors as one catalogued line (CC_ERR_REGISTRY) that names
   * the registry: `--registry` naming a file, a folder without permission, a card that is not JSON.
   */
  private async guarded<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof CryptocastError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      const isFile = await stat(this.root).then(
        (st) => !st.isDirectory(),
        () => false,
      );
      if (isFile || code === 'ENOTDIR')
        throw new RegistryError(`the model registry ${this.root} is not a folder`, {
          hint: 'give a folder (created when missing) or mlflow+http://host:port with --registry or CRYPTOCAST_REGISTRY',
          cause: err,
        });
      // A card or aliases.json that is not JSON or not a card: its message on one line.
      const why = code ?? (err as Error).message.replace(/\s+/g, ' ').slice(0, 300);
      throw new RegistryError(`the model registry ${this.root} cannot be used: ${why}`, { cause: err });
    }
  }

  private dir(name: string): string {
    if (!MODEL_NAME.test(name)) throw new RegistryError(`bad model name "${name}"`);
    return join(this.root, name);
  }

  async register(card: NewModelCard, artifactsDir: string): Promise<ModelCard> {
    return this.guarded(async () => {
      const base = this.dir(card.name);
      await mkdir(join(base, 'versions'), { recursive: true });
      const staging = join(base, `.staging-${randomUUID()}`);
      await mkdir(staging);
      try {
        for (const f of card.artifacts) {
          if (f.includes('/') || f.startsWith('.'))
            throw new RegistryError(`artifact names are plain file names: ${f}`);
          await copyFile(join(artifactsDir, f), join(staging, f));
        }
        // A number once used is never given again, even if its folder was deleted by hand: the aliases (and their
        // history) may still name it, and would then point at a version that never passed their gate.
        const aliases = await this.aliasFile(card.name);
        const named = [
          aliases.champion,
          aliases.challenger,
          ...aliases.history.flatMap((c) => [c.version, c.previous]),
        ];
        const usedBefore = named.reduce<number>((a, b) => (typeof b === 'number' ? Math.max(a, b) : a), 0);
        for (let attempt = 0; attempt < 100; attempt++) {
          const version = (await this.versions(card.name)).reduce((a, b) => Math.max(a, b), usedBefore) + 1;
          const full = ModelCardSchema.parse({ ...card, version, createdAt: Date.now() });
          await writeFile(join(staging, 'card.json'), `${JSON.stringify(full, null, 2)}\n`);
          try {
            await rename(staging, join(base, 'versions', String(version)));
            return full;
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
          }
        }
        throw new RegistryError('could not allocate a version number (100 concurrent registrations?)');
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    });
  }

  private async versions(name: string): Promise<number[]> {
    try {
      const entries = await readdir(join(this.dir(name), 'versions'));
      return entries.filter((e) => /^\d+$/.test(e)).map(Number);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async list(name: string): Promise<ModelCard[]> {
    return this.guarded(async () => {
      const out: ModelCard[] = [];
      for (const v of (await this.versions(name)).sort((a, b) => a - b)) {
        const card = await this.get(name, v);
        if (card) out.push(card);
      }
      return out;
    });
  }

  async get(name: string, version: number): Promise<ModelCard | undefined> {
    return this.guarded(async () => {
      const folder = join(this.dir(name), 'versions', String(version));
      const file = join(folder, 'card.json');
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        // A version folder is renamed into place whole, card included: one without its card was damaged since.
        if (await isFolder(folder)) throw damagedVersion(file, 'is missing', err);
        return undefined;
      }
      try {
        return ModelCardSchema.parse(JSON.parse(text));
      } catch (err) {
        throw damagedVersion(file, `is not a model card (${oneLine(err)})`, err);
      }
    });
  }

  private async aliasFile(name: string): Promise<AliasFile> {
    const file = join(this.dir(name), 'aliases.json');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return { champion: null, challenger: null, history: [] };
      throw err;
    }
    try {
      return JSON.parse(text) as AliasFile;
    } catch (err) {
      throw new RegistryFileError(`${file} is damaged: ${oneLine(err)}`, {
        hint:
          'it was not changed: restore it from a copy, or move it aside and name the champion again ' +
          `(cryptocast models promote VERSION --registry ${this.root}; cryptocast models list shows the versions)`,
        cause: err,
      });
    }
  }

  async alias(name: string, alias: Alias): Promise<number | undefined> {
    return this.guarded(async () => {
      return (await this.aliasFile(name))[alias] ?? undefined;
    });
  }

  async setAlias(
    name: string,
    alias: Alias,
    version: number,
    reason: string,
    ifCurrent?: { version: number | undefined },
  ): Promise<void> {
    return this.guarded(async () => {
      if ((await this.get(name, version)) === undefined) throw noSuchVersion(name, version);
      await this.locked(name, async () => {
        const file = await this.aliasFile(name);
        // Compared under the lock: no other change can land between this check and the write.
        const current = file[alias] ?? undefined;
        if (ifCurrent !== undefined && current !== ifCurrent.version)
          throw new AliasMovedError(name, alias, ifCurrent.version, current);
        const change: AliasChange = { alias, version, previous: file[alias], at: Date.now(), reason };
        file[alias] = version;
        file.history.push(change);
        const path = join(this.dir(name), 'aliases.json');
        const tmp = `${path}.${randomUUID()}.tmp`;
        await writeFile(tmp, `${JSON.stringify(file, null, 2)}\n`);
        await rename(tmp, path);
      });
    });
  }

  async aliasHistory(name: string): Promise<AliasChange[]> {
    return this.guarded(async () => {
      return (await this.aliasFile(name)).history;
    });
  }

  async download(name: string, version: number, dir: string): Promise<Record<string, string>> {
    return this.guarded(async () => {
      const card = await this.get(name, version);
      if (card === undefined) throw noSuchVersion(name, version);
      await mkdir(dir, { recursive: true });
      const out: Record<string, string> = {};
      for (const f of card.artifacts) {
        out[f] = join(dir, f);
        const from = join(this.dir(name), 'versions', String(version), f);
        try {
          await copyFile(from, out[f]);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !(await exists(from)))
            throw damagedVersion(from, 'is missing (the card lists it)', err);
          throw err;
        }
      }
      return out;
    });
  }

  private async locked<T>(name: string, fn: () => Promise<T>): Promise<T> {
    await mkdir(this.dir(name), { recursive: true });
    const lock = join(this.dir(name), '.lock');
    const token = randomUUID();
    const started = Date.now();
    for (;;) {
      try {
        await mkdir(lock);
        // Who holds it, for a process that finds it left behind: a token per hold, since a container restarted after
        // a kill has the same host name and often the same pid (1).
        heldLocks.add(token);
        await writeFile(
          join(lock, 'owner.json'),
          JSON.stringify({ pid: process.pid, host: hostname(), token }),
        );
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (await breakIfStale(lock)) continue;
        if (Date.now() - started > 10_000)
          throw new RegistryError(
            `registry lock ${lock} held for over 10 s (remove it if no trainer is running)`,
          );
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    try {
      return await fn();
    } finally {
      heldLocks.delete(token);
      await rm(lock, { recursive: true, force: true });
    }
  }

  async close(): Promise<void> {}
}

/** The tokens of the locks this process holds now. */
const heldLocks = new Set<string>();

/** A lock older than this is left behind whoever holds it: what it guards (an alias change) takes milliseconds. */
const STALE_LOCK_MS = 10 * 60_000;

/**
 * Removes `lock` when it was left behind — its holder, on this host, is no longer running (a kill -9 between taking
 * and releasing it), or it is older than `STALE_LOCK_MS` — and says whether it did. Without this every later
 * registration waited 10 s and failed, until someone removed it by hand.
 */
export async function breakIfStale(lock: string): Promise<boolean> {
  const seen = await lockState(lock);
  if (seen === undefined) return true; // released meanwhile: take it
  const { since, owner } = seen;
  // Ours (this pid) but not a hold of this process: a previous life of a restarted container.
  const ours = owner.pid === process.pid && typeof owner.token === 'string' && heldLocks.has(owner.token);
  const dead =
    owner.host === hostname() &&
    typeof owner.pid === 'number' &&
    !ours &&
    (owner.pid === process.pid || !running(owner.pid));
  if (!dead && Date.now() - since < STALE_LOCK_MS) return false;
  // Judged on what was read: if another process broke it and took it meanwhile, it is not the one judged.
  const now = await lockState(lock);
  if (now === undefined) return true;
  if (now.since !== since || now.owner.token !== owner.token) return false;
  // Moved aside first: of two processes breaking it at once only one rename succeeds, so neither removes a lock the
  // other has just taken.
  const aside = `${lock}.stale-${randomUUID()}`;
  try {
    await rename(lock, aside);
  } catch {
    return true; // another process broke it first: try to take it
  }
  await rm(aside, { recursive: true, force: true });
  return true;
}

/** When `lock` was taken and by whom (no owner file: taken this instant, not written yet); undefined: no lock. */
async function lockState(
  lock: string,
): Promise<{ since: number; owner: { pid?: unknown; host?: unknown; token?: unknown } } | undefined> {
  let since: number;
  try {
    since = (await stat(lock)).mtimeMs;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const owner = await readFile(join(lock, 'owner.json'), 'utf8').then(
    (text) => {
      const v: unknown = JSON.parse(text);
      return typeof v === 'object' && v !== null
        ? (v as { pid?: unknown; host?: unknown; token?: unknown })
        : {};
    },
    () => ({}),
  );
  return { since, owner };
}

/** Whether a process with this pid runs on this host. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const oneLine = (err: unknown) =>
  (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 300);

const isFolder = (path: string) =>
  stat(path).then(
    (st) => st.isDirectory(),
    () => false,
  );

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** A file of a registered version that is missing or unreadable: named, with what to do (the registry is left as it is). */
function damagedVersion(file: string, what: string, cause: unknown): RegistryError {
  return new RegistryFileError(`${file} ${what}`, {
    hint:
      'the version is damaged and was not changed: restore its folder from a copy, register a new version ' +
      '(bash scripts/price-model.sh, or cryptocast train), or promote another one (cryptocast models list)',
    cause,
  });
}
