import type { FastifyInstance } from 'fastify';
import { log } from '../../core/log.ts';
import type { ModelCard } from '../../training/registry/registry.ts';
import { toldByOutageLog } from '../outage-log.ts';
import { errors, fail } from '../reply.ts';
import { jsonSchema, type ModelSummary, ModelSummarySchema, NoQuerySchema, zodQuery } from '../schemas.ts';

const apiLog = log.child({ service: 'api' });
const noQuery = zodQuery(NoQuerySchema);

export function modelSummary(card: ModelCard): ModelSummary {
  return {
    name: card.name,
    version: card.version,
    createdAt: card.createdAt,
    codeVersion: card.codeVersion,
    horizonMs: card.horizonMs,
    target: card.target,
    featureSets: card.featureSets,
    features: card.columns.length,
    pairs: card.pairs,
    trainingWindow: card.trainingWindow,
    datasetFingerprint: card.datasetFingerprint,
    summary: card.summary,
    ...(card.gate === undefined ? {} : { gate: card.gate }),
  };
}

/** `GET /v1/model`: the champion's card summary (registry lookups are cached by the caller's `model`). */
export function modelRoutes(deps: { model?: () => Promise<ModelCard | undefined> }) {
  return async (r: FastifyInstance) => {
    r.get(
      '/v1/model',
      {
        schema: {
          summary: 'The champion model serving predictions',
          querystring: noQuery.querystring,
          response: { 200: jsonSchema(ModelSummarySchema), ...errors(400, 401, 404, 429, 503) },
        },
        validatorCompiler: noQuery.validatorCompiler,
      },
      async (_req, reply) => {
        let card: ModelCard | undefined;
        try {
          card = await deps.model?.();
        } catch (err) {
          if (!toldByOutageLog(err)) apiLog.error({ err }, 'model registry lookup failed');
          return fail(reply, 503, 'the model registry is unavailable', 'registry_unavailable');
        }
        if (card === undefined) return fail(reply, 404, 'no champion model');
        return modelSummary(card);
      },
    );
  };
}
