/** The shapes the dashboard reads from the API (see the OpenAPI document at /v1/openapi.json). */
export interface Candle {
  pair: string;
  windowStart: number;
  windowEnd: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  filled: boolean;
}

export interface Prediction {
  pair: string;
  windowEnd: number;
  targetTs: number;
  close: number;
  predictedClose: number;
  p10: number;
  p90: number;
  modelName: string;
  modelVersion: number;
  latencyMs: number;
}

export interface PredictionError {
  pair: string;
  windowEnd: number;
  targetTs: number;
  modelVersion: number;
  status: 'scored' | 'unscorable';
  predictedClose: number;
  actualClose: number | null;
  error: number | null;
  absError: number | null;
  persistenceAbsError: number | null;
  directionHit: boolean | null;
  inBand: boolean | null;
  reason: string | null;
}

export interface Figures {
  fromTs: number;
  toTs: number;
  count: number;
  unscorable: number;
  mae: number | null;
  rmse: number | null;
  bias: number | null;
  persistenceMae: number | null;
  skill: number | null;
  directionalAccuracy: number | null;
  directionalCi95: number[] | null;
  ties: number;
  coverage: number | null;
}

export interface Quality {
  pair: string;
  clock: number;
  clockKind: 'event' | 'wall';
  coverageTarget: number;
  /** The monitor's coverage alert band for this pair; null when no rule watches it. */
  coverageAlertBand: { rule: string; window: string; low: number; high: number } | null;
  windows: Record<string, Figures>;
  champion: {
    name: string;
    version: number;
    walkForward: {
      scope: string;
      n: number | null;
      mae: number | null;
      persistenceMae: number | null;
      skill: number | null;
      dmPvalue: number | null;
      directionalAccuracy: number | null;
      directionalCi95: number[] | null;
      coverage: number | null;
    };
  } | null;
}

export interface Model {
  name: string;
  version: number;
  createdAt: number;
  codeVersion: string;
  horizonMs: number;
  pairs: string[];
  trainingWindow: { from: number; to: number };
  features: number;
  gate?: { promoted: boolean; reasons: string[] };
}

export interface ModelHistory {
  name: string;
  champion: number | null;
  changes: { alias: string; version: number | null; previous: number | null; at: number; reason: string }[];
  versions: { version: number; createdAt: number; skill: number | null; promoted: boolean | null }[];
}

export interface PipelineHealth {
  at: number;
  clockKind: 'wall' | 'event';
  topics: { topic: string; lastAppendedAt: number | null; ageMs: number | null }[];
  consumerLag: { topic: string; group: string; records: number | null }[];
  deadLettersLastHour: number;
  features: { pair: string; windowEnd: number; stalenessMs: number }[];
  predictionLatencyMs: { p50: number | null; p99: number | null; n: number };
  alerts: { rule: string; key: string; severity: string; message: string; startsAt: number }[];
}

export interface NewsEntry {
  id: string;
  title: string;
  url: string | null;
  source: string;
  publishedAt: number;
  signals: {
    coin: string;
    score: number;
    label: string;
    confidence: number;
    model: string;
    baseline: boolean;
  }[];
}
