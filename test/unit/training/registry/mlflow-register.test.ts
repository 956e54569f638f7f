import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MlflowRegistry } from '../../../../src/training/registry/mlflow.ts';
import { sampleModel } from '../../../support/registry-contract.ts';

/**
 * `register` against MLflow failing after the version is created (the contract suite runs on a real MLflow in the
 * integration tests; a failure at this one step is made here, with the client's REST calls answered in memory).
 */
function registryFailing(step: 'card' | 'runs/set-tag' | 'runs/update') {
  const calls: string[] = [];
  let cardUploads = 0;
  const fake = {
    base: 'http://mlflow.test',
    experimentId: async () => '1',
    ensureRegisteredModel: async () => {},
    artifactPath: (uri: string) => uri,
    upload: async (_root: string, file: string) => {
      calls.push(`upload ${file}`);
      // The second upload of card.json is the one with MLflow's number, after the version was created.
      if (file === 'card.json' && ++cardUploads === 2 && step === 'card') throw new Error('HTTP 503');
    },
    api: async (_method: string, endpoint: string, args: { status?: string }) => {
      calls.push(args.status === undefined ? endpoint : `${endpoint} ${args.status}`);
      if (endpoint === step) throw new Error('HTTP 503');
      if (endpoint === 'runs/create')
        return { run: { info: { run_id: 'r1', artifact_uri: 'mlflow-artifacts:/1/r1/artifacts' } } };
      if (endpoint === 'model-versions/create') return { model_version: { version: '7' } };
      return {};
    },
  };
  const registry = new MlflowRegistry('http://mlflow.test');
  Object.defineProperty(registry, 'client', { value: fake });
  return { registry, calls };
}

describe('MLflow registry: a failure after the version is created', () => {
  for (const step of ['card', 'runs/set-tag', 'runs/update'] as const)
    it(`${step} failing: the version is returned (for its alias), the run not marked FAILED`, async () => {
      const { registry, calls } = registryFailing(step);
      const s = sampleModel('price', 'a');
      const card = await registry.register(s.card, s.dir);
      assert.equal(card.version, 7);
      assert.ok(calls.includes('model-versions/create'));
      assert.equal(calls.includes('runs/update FAILED'), false, calls.join(', '));
    });
});
