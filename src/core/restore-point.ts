/**
 * A restore point for `keys` of `map`: the returned function puts their entries back as they were (deep copies,
 * `structuredClone`), deleting those that were absent. For state a failed batch changed before it is delivered again.
 */
export function restorePoint<K, V>(map: Map<K, V>, keys: Iterable<K>): () => void {
  const saved = [...new Set(keys)].map((k) => [k, structuredClone(map.get(k))] as const);
  return () => {
    for (const [k, v] of saved)
      if (v === undefined) map.delete(k);
      else map.set(k, v);
  };
}
