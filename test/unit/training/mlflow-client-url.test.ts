import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MlflowClient } from '../../../src/training/registry/mlflow-client.ts';

describe('MlflowClient URL', () => {
  it('a URL it refuses (does not parse, or not http) is quoted without its password', () => {
    for (const url of [
      'http://ops:s3cret@mlflow:notaport',
      'http://ops:s3 cret@[::1',
      'ftp://ops:s3cret@mlflow',
    ]) {
      assert.throws(
        () => new MlflowClient(url),
        (err: Error) => {
          assert.match(err.message, /bad MLflow URL "[a-z]+:\/\/\[redacted\]@/);
          assert.doesNotMatch(err.message, /s3 ?cret/);
          return true;
        },
      );
    }
  });

  it('keeps the credentials of a good URL out of its base', () => {
    assert.equal(new MlflowClient('http://ops:secret@mlflow:5000/').base, 'http://mlflow:5000');
  });
});
