import type { ServingModel } from '../../src/inference/model-holder.ts';
import type { ModelCard } from '../../src/training/registry/registry.ts';

/**
 * A served model without files: returnBps = ret_1m × 1e3 (an output that depends on the vector), quantiles ±10 bps
 * around it; version 4 of `price`, 5 minutes ahead.
 */
export const linearServingModel: ServingModel = {
  card: {
    name: 'price',
    version: 4,
    horizonMs: 300_000,
    target: 'log_return_bps',
    columns: ['ret_1m'],
  } as ModelCard,
  predict: (v) => ({
    returnBps: v.values[0]! * 1e3,
    p10Bps: v.values[0]! * 1e3 - 10,
    p90Bps: v.values[0]! * 1e3 + 10,
  }),
};
