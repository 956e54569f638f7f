# syntax=docker/dockerfile:1
# One image for every streaming service of cryptocast; the CLI picks the service:
#   docker run cryptocast service candles --bus kafka://kafka:9092
# The trainer (XGBoost in Python) has an image of its own: Dockerfile.trainer.
#
# Build: docker build -t cryptocast:0.1.0 --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
# Node runs the TypeScript sources directly (type stripping, Node 24): there is no compile step to ship.

ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# ---- production dependencies only (no biome, typescript, test tools) ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# The pods run llama.cpp on CPU: its CUDA and Vulkan builds (about 600 MB) stay out of the image.
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error \
 && rm -rf node_modules/@node-llama-cpp/*-cuda* node_modules/@node-llama-cpp/*-vulkan* \
 && npm cache clean --force

# ---- runtime: the Node runtime, the production node_modules and the sources, nothing else ----
FROM ${NODE_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="cryptocast" \
      org.opencontainers.image.description="Real-time BTC/ETH price prediction services (trades, candles, features, news, sentiment, predictor, API, monitor, index sink)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/cryptocast/cryptocast" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"
ENV NODE_ENV=production \
    npm_package_version=${VERSION} \
    CRYPTOCAST_LOG_LEVEL=info
WORKDIR /app
# Code and dependencies belong to root and are read-only for the service user; the only writable place is .data
# (DuckDB in the embedded mode, the sentiment cache), a volume in Kubernetes.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY src ./src
RUN mkdir -p /app/.data && chown 1000:1000 /app/.data
# The base image's unprivileged "node" user, by number so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080 9464
# The API answers /v1/health on 8080; every other service serves /metrics on its --metrics-port (9464 here).
# CRYPTOCAST_HEALTH_URL says which (compose and the chart set it per service; Kubernetes uses its own probes).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "/app/src/cli/probe.ts"]
ENTRYPOINT ["node", "--enable-source-maps", "--disable-warning=ExperimentalWarning", "/app/src/cli/main.ts"]
CMD ["--help"]
