#!/usr/bin/env bash
# The whole test suite, from a clean clone: setup, lint, type-check, unit tests, integration tests against
# real components (an Apache Kafka broker started here from Maven Central jars, PostgreSQL, an MLflow server, the
# trainer's XGBoost, real recorded data).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '\033[1;34m[test]\033[0m %s\n' "$*" >&2; }

bash scripts/setup.sh
export PATH="$ROOT/.tools/node/bin:$PATH"
export NODE_ENV=test

log "real Kafka broker (scripts/kafka.sh)"
bash scripts/kafka.sh install
bash scripts/kafka.sh start

log "real PostgreSQL (scripts/postgres.sh)"
bash scripts/postgres.sh start

log "real MLflow tracking server (scripts/mlflow.sh)"
bash scripts/mlflow.sh install
bash scripts/mlflow.sh start

log "real OpenSearch node (scripts/opensearch.sh)"
bash scripts/opensearch.sh install
bash scripts/opensearch.sh start

log "promtool (Debian's prometheus package, for deploy/prometheus)"
bash scripts/promtool.sh path >/dev/null

log "Chromium (Debian's package, for the dashboard's browser tests)"
bash scripts/chromium.sh >/dev/null

log "offline deployment tools: helm, kubeconform, Kubernetes schemas, hadolint (scripts/deploy-tools.sh)"
bash scripts/deploy-tools.sh install

log "lint (biome)"
npx --no-install biome check src test bench scripts
log "type-check (tsc)"
npx --no-install tsc -p tsconfig.json
npx --no-install tsc -p src/dashboard/web/tsconfig.json

log "tests (node:test)"
# One run over every test file, so the runner prints one closing summary. Three files at a time on a 2-core machine:
# most integration files spend their time waiting on a broker, a server or the wall clock, so a third file fills the
# cores they leave idle (measured in README: command 2 under stress-ng).
node --test --test-concurrency=3 --test-timeout=240000 --test-reporter=spec \
  'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts'
