/**
 * An XGBoost model (the JSON that `booster.save_model('model.json')` writes, XGBoost 2.x/3.x) evaluated in
 * TypeScript, so the live service predicts without Python. Predictions are bit-for-bit XGBoost's CPU predictor's:
 *
 * - A split sends a row left when `x < split_condition`, both as float32 (XGBoost reads the features as float32 and
 *   stores the conditions as float32); a missing value (NaN) follows `default_left`.
 * - A leaf's value is its `split_conditions` entry (XGBoost's `LeafValue()`, learning rate applied), not its
 *   `base_weights` entry: the two agree for most objectives, but reg:absoluteerror and reg:quantileerror re-fit
 *   their leaves after each tree is grown (to the residuals' median or quantile) and only the former is updated.
 * - The sum is a float32 accumulator started at the base margin, to which each tree's leaf is added in tree order,
 *   rounding to float32 after every addition (XGBoost's prediction buffer is `float`). Adding in float64 instead
 *   drifts from XGBoost by up to 8e-5 bps over 100 trees (measured), more than the 1e-5 the runtime promises; with
 *   the float32 sum the predictions are identical to XGBoost's (test/integration/xgboost-parity.test.ts).
 * - XGBoost ≥ 2 stores `base_score` in the output space; the margin is the objective's inverse link of it, which for
 *   the regression objectives accepted here (identity link) is `base_score` itself, and the prediction is the margin.
 *
 * Only what the trainer produces is accepted: a `gbtree` booster with one output, numerical splits and an
 * identity-link regression objective. Anything else (dart, gblinear, multi-class / multi-output, categorical splits,
 * a logistic or count objective) is refused by name rather than predicted wrongly.
 */

export class XgbModelError extends Error {
  override readonly name = 'XgbModelError';
}

/** Objectives whose prediction is the raw margin and whose base_score is stored as the margin. */
const IDENTITY_OBJECTIVES = new Set([
  'reg:squarederror',
  'reg:pseudohubererror',
  'reg:absoluteerror',
  'reg:quantileerror',
]);

type Json = Record<string, unknown>;

/** Trees per compiled function: small enough for V8 to optimise each one, few enough calls per row. */
const TREES_PER_FUNCTION = 10;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function field(o: Json, key: string, where: string): unknown {
  if (!(key in o)) throw new XgbModelError(`not an XGBoost JSON model: ${where}.${key} is missing`);
  return o[key];
}

function object(o: Json, key: string, where: string): Json {
  const v = field(o, key, where);
  if (!isObject(v)) throw new XgbModelError(`not an XGBoost JSON model: ${where}.${key} is not an object`);
  return v;
}

function numbers(o: Json, key: string, where: string): number[] {
  const v = field(o, key, where);
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number'))
    throw new XgbModelError(`not an XGBoost JSON model: ${where}.${key} is not an array of numbers`);
  return v as number[];
}

/** XGBoost writes its parameters as strings ("24"); older versions sometimes as numbers. */
function integer(v: unknown, what: string): number {
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0)
    throw new XgbModelError(`not an XGBoost JSON model: ${what} is ${JSON.stringify(v)}`);
  return n;
}

/**
 * `learner_model_param.base_score`: "5E-1" (XGBoost ≤ 3.0), "[-2.137993E-2]" (3.1+, a vector with one value per
 * target), or a plain number. Returns the values as float32.
 */
export function parseBaseScore(v: unknown): number[] {
  let values: number[];
  if (typeof v === 'number') values = [v];
  else if (typeof v === 'string') {
    const s = v.trim();
    const inner = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
    values = inner.split(',').map((x) => (x.trim() === '' ? Number.NaN : Number(x)));
  } else values = [Number.NaN];
  if (values.length === 0 || values.some((x) => !Number.isFinite(x)))
    throw new XgbModelError(`cannot read base_score ${JSON.stringify(v)}`);
  return values.map(Math.fround);
}

export interface XgbModelInfo {
  objective: string;
  /** The base margin (float32), which every prediction starts from. */
  baseScore: number;
  numFeatures: number;
  numTrees: number;
  /** Boosting rounds (trees / num_parallel_tree). */
  numIterations: number;
  /** Feature names saved with the model ([] when the DMatrix had none, as in the trainer). */
  featureNames: string[];
}

export class XgbModel {
  readonly objective: string;
  readonly baseScore: number;
  readonly numFeatures: number;
  readonly numTrees: number;
  readonly numIterations: number;
  readonly featureNames: string[];

  /**
   * The trees flattened into one node table, 4 slots per node so that a node is one 16-byte read: `nodes[4i]` left
   * child, `[4i + 1]` right child (both as slot offsets 4j; -1 for a leaf), `[4i + 2]` the feature tested, and
   * `values[4i + 3]` (a float32 view of the same memory) the split condition, or the leaf value for a leaf.
   */
  private readonly nodes: Int32Array;
  private readonly values: Float32Array;
  /** Per node (index i, not 4i): 1 when a missing value goes left. Read only for missing values. */
  private readonly defaultLeft: Uint8Array;
  /** Slot offset of each tree's root. */
  private readonly roots: Int32Array;
  /** A float32 copy of a `number[]` row, so that its values compare as float32. */
  private readonly scratch: Float32Array;
  /** The trees as JavaScript (see `compile`), made on first use. */
  private compiled: ((X: Float32Array, at: number, sum: number) => number)[] | undefined;

  private constructor(info: XgbModelInfo, trees: Json[]) {
    this.objective = info.objective;
    this.baseScore = info.baseScore;
    this.numFeatures = info.numFeatures;
    this.numTrees = info.numTrees;
    this.numIterations = info.numIterations;
    this.featureNames = info.featureNames;
    this.scratch = new Float32Array(info.numFeatures);

    let total = 0;
    const parsed = trees.map((t, i) => {
      const tree = parseTree(t, i, info.numFeatures);
      total += tree.n;
      return tree;
    });
    const buffer = new ArrayBuffer(total * 16);
    this.nodes = new Int32Array(buffer);
    this.values = new Float32Array(buffer);
    this.defaultLeft = new Uint8Array(total);
    this.roots = new Int32Array(parsed.length);
    let offset = 0;
    for (const [i, t] of parsed.entries()) {
      this.roots[i] = 4 * offset;
      for (let k = 0; k < t.n; k++) {
        const g = offset + k;
        const leaf = t.left[k] === -1;
        this.nodes[4 * g] = leaf ? -1 : 4 * (offset + t.left[k]!);
        this.nodes[4 * g + 1] = leaf ? -1 : 4 * (offset + t.right[k]!);
        this.nodes[4 * g + 2] = leaf ? 0 : t.feature[k]!;
        this.values[4 * g + 3] = t.value[k]!; // rounds to float32 (exactly: the JSON holds float32 values)
        this.defaultLeft[g] = t.defaultLeft[k]!;
      }
      offset += t.n;
    }
  }

  /** Parses an XGBoost JSON model (its text, or the parsed object). */
  static fromJson(json: string | object): XgbModel {
    let doc: unknown = json;
    if (typeof json === 'string') {
      try {
        doc = JSON.parse(json);
      } catch (err) {
        throw new XgbModelError(`not an XGBoost JSON model: ${(err as Error).message}`);
      }
    }
    if (!isObject(doc)) throw new XgbModelError('not an XGBoost JSON model: not an object');
    const learner = object(doc, 'learner', 'model');
    const gb = object(learner, 'gradient_booster', 'learner');
    const booster = field(gb, 'name', 'learner.gradient_booster');
    if (booster === 'dart')
      throw new XgbModelError('unsupported XGBoost model: the dart booster (only gbtree is supported)');
    if (booster === 'gblinear')
      throw new XgbModelError('unsupported XGBoost model: the gblinear booster (only gbtree is supported)');
    if (booster !== 'gbtree')
      throw new XgbModelError(
        `unsupported XGBoost model: booster ${JSON.stringify(booster)} (only gbtree is supported)`,
      );

    const objective = field(object(learner, 'objective', 'learner'), 'name', 'learner.objective');
    if (typeof objective !== 'string' || !IDENTITY_OBJECTIVES.has(objective))
      throw new XgbModelError(
        `unsupported XGBoost model: objective ${JSON.stringify(objective)} (supported: ${[...IDENTITY_OBJECTIVES].join(', ')})`,
      );

    const mp = object(learner, 'learner_model_param', 'learner');
    const numFeatures = integer(field(mp, 'num_feature', 'learner.learner_model_param'), 'num_feature');
    const numClass = integer(mp['num_class'] ?? '0', 'num_class');
    const numTarget = integer(mp['num_target'] ?? '1', 'num_target');
    if (numClass > 1)
      throw new XgbModelError(
        `unsupported XGBoost model: multi-class (${numClass} classes; one output only)`,
      );
    if (numTarget > 1)
      throw new XgbModelError(
        `unsupported XGBoost model: multi-output (${numTarget} targets; one output only)`,
      );
    const base = parseBaseScore(field(mp, 'base_score', 'learner.learner_model_param'));
    if (base.length !== 1)
      throw new XgbModelError(
        `unsupported XGBoost model: multi-output (base_score has ${base.length} values)`,
      );

    const featureTypes = learner['feature_types'];
    if (Array.isArray(featureTypes) && featureTypes.includes('c'))
      throw new XgbModelError('unsupported XGBoost model: categorical features (feature_types has "c")');
    const featureNames = learner['feature_names'];
    const names = Array.isArray(featureNames) ? featureNames.map(String) : [];
    if (names.length > 0 && names.length !== numFeatures)
      throw new XgbModelError(
        `not an XGBoost JSON model: ${names.length} feature names for ${numFeatures} features`,
      );

    const model = object(gb, 'model', 'learner.gradient_booster');
    const where = 'learner.gradient_booster.model';
    const cats = model['cats'];
    if (isObject(cats) && Array.isArray(cats['enc']) && cats['enc'].length > 0)
      throw new XgbModelError(
        'unsupported XGBoost model: categorical features (the model has category encodings)',
      );
    const trees = field(model, 'trees', where);
    if (!Array.isArray(trees) || !trees.every(isObject))
      throw new XgbModelError(`not an XGBoost JSON model: ${where}.trees is not an array of trees`);
    const treeInfo = numbers(model, 'tree_info', where);
    if (treeInfo.length !== trees.length)
      throw new XgbModelError(
        `not an XGBoost JSON model: ${trees.length} trees but tree_info has ${treeInfo.length} entries`,
      );
    if (treeInfo.some((g) => g !== 0))
      throw new XgbModelError('unsupported XGBoost model: trees for several output groups (one output only)');
    const param = object(model, 'gbtree_model_param', where);
    const declared = integer(field(param, 'num_trees', `${where}.gbtree_model_param`), 'num_trees');
    if (declared !== trees.length)
      throw new XgbModelError(
        `not an XGBoost JSON model: num_trees is ${declared} but ${trees.length} trees`,
      );
    const parallel = integer(param['num_parallel_tree'] ?? '1', 'num_parallel_tree');
    // iteration_indptr (XGBoost ≥ 2): where each boosting round's trees start; absent in older models.
    const indptr = model['iteration_indptr'];
    let numIterations = parallel > 0 ? trees.length / parallel : 0;
    if (Array.isArray(indptr)) {
      const ok =
        indptr.length >= 1 &&
        indptr[0] === 0 &&
        indptr[indptr.length - 1] === trees.length &&
        indptr.every((v, i) => typeof v === 'number' && (i === 0 || v >= (indptr[i - 1] as number)));
      if (!ok)
        throw new XgbModelError(
          `not an XGBoost JSON model: iteration_indptr does not cover the ${trees.length} trees`,
        );
      numIterations = indptr.length - 1;
    }
    return new XgbModel(
      {
        objective,
        baseScore: base[0]!,
        numFeatures,
        numTrees: trees.length,
        numIterations,
        featureNames: names,
      },
      trees as Json[],
    );
  }

  /** The prediction for one row of `numFeatures` values (NaN = missing). */
  predict(row: Float32Array | readonly number[]): number {
    if (row.length !== this.numFeatures)
      throw new XgbModelError(`the model takes ${this.numFeatures} features, got a row of ${row.length}`);
    let x: Float32Array;
    if (row instanceof Float32Array) x = row;
    else {
      x = this.scratch;
      for (let j = 0; j < row.length; j++) x[j] = row[j]!;
    }
    return this.evaluate(x, 0);
  }

  /** Predictions for `nRows` rows of `X` (row-major, nRows × numFeatures, float32, NaN = missing). */
  predictBatch(X: Float32Array, nRows: number): Float64Array {
    if (!Number.isInteger(nRows) || nRows < 0 || X.length !== nRows * this.numFeatures)
      throw new XgbModelError(
        `the model takes ${this.numFeatures} features: X has ${X.length} values for ${nRows} rows`,
      );
    const out = new Float64Array(nRows);
    const k = this.numFeatures;
    for (let r = 0; r < nRows; r++) out[r] = this.evaluate(X, r * k);
    return out;
  }

  info(): XgbModelInfo {
    return {
      objective: this.objective,
      baseScore: this.baseScore,
      numFeatures: this.numFeatures,
      numTrees: this.numTrees,
      numIterations: this.numIterations,
      featureNames: [...this.featureNames],
    };
  }

  /** The row starting at `X[at]`: float32 accumulation in tree order, as XGBoost's CPU predictor. */
  private evaluate(X: Float32Array, at: number): number {
    if (this.compiled === undefined) this.compiled = this.compile();
    const groups = this.compiled;
    let sum = this.baseScore;
    for (let g = 0; g < groups.length; g++) sum = groups[g]!(X, at, sum);
    return sum;
  }

  /**
   * The trees compiled to JavaScript, as tl2cgen compiles them to C: each tree becomes nested conditionals with its
   * features and thresholds as constants, which V8 turns into machine code (a compare and a branch per level)
   * instead of walking the node table (three loads per level). About 2–3× faster for single rows and batches
   * alike. Functions of `TREES_PER_FUNCTION` trees, each adding its leaf to the float32 sum in tree order, exactly
   * as `evaluateTable` (the reference, kept for the tests) and XGBoost do. The source holds nothing but numbers
   * from the parsed node table.
   */
  private compile(): ((X: Float32Array, at: number, sum: number) => number)[] {
    const { nodes, values, defaultLeft, roots } = this;
    const num = (v: number) => (Object.is(v, -0) ? '-0' : String(v));
    const expr = (n: number): string => {
      const l = nodes[n]!;
      if (l === -1) return num(values[n + 3]!);
      const x = `X[at + ${nodes[n + 2]!}]`;
      const c = num(values[n + 3]!);
      // Left when x < c; a missing value (NaN) fails both comparisons and goes where default_left says.
      return defaultLeft[n >> 2] === 0
        ? `(${x} < ${c} ? ${expr(l)} : ${expr(nodes[n + 1]!)})`
        : `(${x} >= ${c} ? ${expr(nodes[n + 1]!)} : ${expr(l)})`;
    };
    const out: ((X: Float32Array, at: number, sum: number) => number)[] = [];
    for (let t0 = 0; t0 < roots.length; t0 += TREES_PER_FUNCTION) {
      let body = '';
      for (let t = t0; t < Math.min(roots.length, t0 + TREES_PER_FUNCTION); t++)
        body += `sum = f(sum + ${expr(roots[t]!)});\n`;
      out.push(new Function('f', `return function (X, at, sum) {\n${body}return sum;\n};`)(Math.fround));
    }
    return out;
  }

  /** The node-table walk (the reference the compiled trees must equal; tests). */
  evaluateTable(X: Float32Array, at: number): number {
    const roots = this.roots;
    let sum = this.baseScore;
    for (let t = 0; t < roots.length; t++) sum = Math.fround(sum + this.leaf(roots[t]!, X, at));
    return sum;
  }

  /** The leaf value the row at `X[at]` reaches in the tree whose root is at slot `n`. */
  private leaf(n: number, X: Float32Array, at: number): number {
    const { nodes, values } = this;
    let l = nodes[n]!;
    while (l !== -1) {
      const v = X[at + nodes[n + 2]!]!;
      // v and the condition are float32 values (read from Float32Arrays): the comparison is XGBoost's float one.
      // Neither v < c nor v >= c holds only when v is NaN (missing): then default_left decides.
      const c = values[n + 3]!;
      n = v < c ? l : v >= c || this.defaultLeft[n >> 2] === 0 ? nodes[n + 1]! : l;
      l = nodes[n]!;
    }
    return values[n + 3]!;
  }
}

interface Tree {
  n: number;
  left: Int32Array;
  right: Int32Array;
  defaultLeft: Uint8Array;
  feature: Int32Array;
  value: Float64Array;
}

function parseTree(t: Json, i: number, numFeatures: number): Tree {
  const where = `tree ${i}`;
  const left = numbers(t, 'left_children', where);
  const right = numbers(t, 'right_children', where);
  const split = numbers(t, 'split_indices', where);
  const cond = numbers(t, 'split_conditions', where);
  const dleft = numbers(t, 'default_left', where);
  const n = left.length;
  for (const [k, a] of Object.entries({ right, split, cond, dleft }))
    if (a.length !== n)
      throw new XgbModelError(`not an XGBoost JSON model: ${where} has ${n} nodes but ${a.length} ${k}`);
  if (n === 0) throw new XgbModelError(`not an XGBoost JSON model: ${where} has no nodes`);
  const tp = t['tree_param'];
  if (isObject(tp) && integer(tp['size_leaf_vector'] ?? '1', 'size_leaf_vector') > 1)
    throw new XgbModelError(`unsupported XGBoost model: multi-output trees (${where} has vector leaves)`);
  const splitType = t['split_type'];
  const categories = t['categories'];
  if (
    (Array.isArray(splitType) && splitType.some((s) => s !== 0)) ||
    (Array.isArray(categories) && categories.length > 0)
  )
    throw new XgbModelError(`unsupported XGBoost model: categorical splits (${where})`);

  // Every node reachable from the root exactly once, children in range, leaves with both children -1.
  const seen = new Uint8Array(n);
  const stack = [0];
  seen[0] = 1;
  while (stack.length > 0) {
    const k = stack.pop()!;
    const l = left[k]!;
    const r = right[k]!;
    if (l === -1 && r === -1) {
      if (!Number.isFinite(cond[k]!))
        throw new XgbModelError(`not an XGBoost JSON model: ${where} node ${k} has a non-finite leaf value`);
      continue;
    }
    if (!(Number.isInteger(l) && Number.isInteger(r) && l > 0 && r > 0 && l < n && r < n && l !== r))
      throw new XgbModelError(`not an XGBoost JSON model: ${where} node ${k} has children ${l} and ${r}`);
    const f = split[k]!;
    if (!(Number.isInteger(f) && f >= 0 && f < numFeatures))
      throw new XgbModelError(
        `not an XGBoost JSON model: ${where} node ${k} splits on feature ${f} of ${numFeatures}`,
      );
    if (Number.isNaN(cond[k]!))
      throw new XgbModelError(`not an XGBoost JSON model: ${where} node ${k} has a NaN split condition`);
    for (const c of [l, r]) {
      if (seen[c]) throw new XgbModelError(`not an XGBoost JSON model: ${where} node ${c} is reached twice`);
      seen[c] = 1;
      stack.push(c);
    }
  }
  return {
    n,
    left: Int32Array.from(left),
    right: Int32Array.from(right),
    defaultLeft: Uint8Array.from(dleft, (d) => (d ? 1 : 0)),
    feature: Int32Array.from(split),
    value: Float64Array.from(cond),
  };
}
