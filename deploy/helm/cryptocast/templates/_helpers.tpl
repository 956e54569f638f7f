{{/* Names and labels. */}}
{{- define "cryptocast.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cryptocast.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cryptocast
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" NAME). */}}
{{- define "cryptocast.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "cryptocast.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cryptocast.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "cryptocast.image" -}}
{{- $tag := default .root.Chart.AppVersion .image.tag -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
The topics the services expect, with the partition counts declared in src/schemas/topics.ts (a test compares the
two): a Kafka topic must have exactly these, or the services refuse it. maxReplicas of a consumer follows.
*/}}
{{- define "cryptocast.topics" -}}
trades: 4
trades.resume: 1
candles: 4
features: 4
news: 1
news.signals: 1
predictions: 4
predictions.errors: 4
predictor.aci: 4
alerts: 1
dlq: 1
{{- end -}}

{{/*
The topics a restarted predictor reads back, with the least retention.ms they get (RESTORE_RETENTION_MS in
src/schemas/topics.ts, 8 days; a test compares): its ACI warm-up reaches a week and an hour back, and a broker's
week lost the oldest states it restores from. `cryptocast topics create` (the Job) gives them the same.
*/}}
{{- define "cryptocast.restoreRetentionMs" -}}
predictions: 691200000
predictor.aci: 691200000
{{- end -}}

{{/*
The compacted topics (`compacted` in src/schemas/topics.ts; a test compares), with their segment.ms (`segmentMs`,
RESUME_SEGMENT_MS): the latest record per key is kept, not a time window, and the active segment, never compacted, rolls
hourly. `cryptocast topics create` (the Job) creates them so too.
*/}}
{{- define "cryptocast.compactedTopics" -}}
trades.resume: 3600000
{{- end -}}

{{/* The topic whose partitions bound a service's replicas (a consumer group gives a partition to one member). */}}
{{- define "cryptocast.inputTopic" -}}
{{- $m := dict "candles" "trades" "features" "candles" "feature-writer" "features" "news-signals" "news" "predictor" "features" "index-sink" "predictions" -}}
{{- index $m . | default "" -}}
{{- end -}}

{{/* The PostgreSQL URL without a password (the stores take PGPASSWORD, from the Secret). */}}
{{- define "cryptocast.postgresUrl" -}}
{{- $p := .Values.postgresql -}}
{{- printf "postgres://%s@%s:%v/%s" $p.user $p.host $p.port $p.database -}}
{{- if $p.options }}?{{ $p.options }}{{ end -}}
{{- end -}}

{{/* One env entry read from the chart's ConfigMap. */}}
{{- define "cryptocast.fromConfig" -}}
- name: {{ .name }}
  valueFrom:
    configMapKeyRef:
      name: {{ include "cryptocast.fullname" .root }}-config
      key: {{ .name }}
{{- end -}}

{{/*
The API's trusted proxies (CRYPTOCAST_API_TRUST_PROXY), comma separated: api.trustProxy, else with the chart's Ingress
the private ranges its controller's pods are in (uniquelocal), else none (""): the client is the connection's peer.
*/}}
{{- define "cryptocast.apiTrustProxy" -}}
{{- if .Values.api.trustProxy -}}
{{- join "," .Values.api.trustProxy -}}
{{- else if .Values.api.ingress.enabled -}}
uniquelocal
{{- end -}}
{{- end -}}

{{/* One env entry read from a Secret: (dict "name" VAR "secret" NAME "key" KEY "optional" BOOL). */}}
{{- define "cryptocast.fromSecret" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
      {{- if .optional }}
      optional: true
      {{- end }}
{{- end -}}

{{/* Where the Kafka TLS Secrets are mounted (cryptocast.kafkaTlsMounts), and the files the variables name. */}}
{{- define "cryptocast.kafkaCaFile" -}}
/etc/kafka-tls/ca/{{ .Values.kafka.tls.caSecret.key }}
{{- end -}}
{{- define "cryptocast.kafkaCertFile" -}}
/etc/kafka-tls/client/{{ .Values.kafka.tls.clientSecret.certKey }}
{{- end -}}
{{- define "cryptocast.kafkaKeyFile" -}}
/etc/kafka-tls/client/{{ .Values.kafka.tls.clientSecret.keyKey }}
{{- end -}}

{{/*
The Kafka security settings of a Kafka client (src/config/kafka-security.ts): (dict "root" $ "plain" BOOL). Only the
ones the values turn on; the password from its Secret. `plain`: values written in the entry (the topics Job, a hook
that runs before the ConfigMap exists), else from the ConfigMap.
*/}}
{{- define "cryptocast.kafkaSecurityEnv" -}}
{{- $root := .root -}}
{{- $k := $root.Values.kafka -}}
{{- $names := list -}}
{{- if $k.tls.enabled }}{{ $names = append $names "CRYPTOCAST_KAFKA_TLS" }}{{ end -}}
{{- if and $k.tls.enabled $k.tls.caSecret.name }}{{ $names = append $names "CRYPTOCAST_KAFKA_CA_FILE" }}{{ end -}}
{{- if and $k.tls.enabled $k.tls.clientSecret.name }}{{ $names = concat $names (list "CRYPTOCAST_KAFKA_CERT_FILE" "CRYPTOCAST_KAFKA_KEY_FILE") }}{{ end -}}
{{- if $k.sasl.mechanism }}{{ $names = concat $names (list "CRYPTOCAST_KAFKA_SASL_MECHANISM" "CRYPTOCAST_KAFKA_SASL_USERNAME") }}{{ end -}}
{{- $values := include "cryptocast.kafkaSecurityValues" $root | fromYaml -}}
{{- range $names }}
{{- if $.plain }}
- name: {{ . }}
  value: {{ get $values . | quote }}
{{- else }}
{{ include "cryptocast.fromConfig" (dict "name" . "root" $root) }}
{{- end }}
{{- end }}
{{- if $k.sasl.mechanism }}
{{ include "cryptocast.fromSecret" (dict "name" "CRYPTOCAST_KAFKA_SASL_PASSWORD" "secret" $k.sasl.passwordSecret.name "key" $k.sasl.passwordSecret.key) }}
{{- end }}
{{- end -}}

{{/* The non-secret Kafka security values, as the ConfigMap holds them. */}}
{{- define "cryptocast.kafkaSecurityValues" -}}
{{- $k := .Values.kafka -}}
CRYPTOCAST_KAFKA_TLS: {{ ternary "true" "false" $k.tls.enabled | quote }}
CRYPTOCAST_KAFKA_CA_FILE: {{ ternary (include "cryptocast.kafkaCaFile" .) "" (not (empty $k.tls.caSecret.name)) | quote }}
CRYPTOCAST_KAFKA_CERT_FILE: {{ ternary (include "cryptocast.kafkaCertFile" .) "" (not (empty $k.tls.clientSecret.name)) | quote }}
CRYPTOCAST_KAFKA_KEY_FILE: {{ ternary (include "cryptocast.kafkaKeyFile" .) "" (not (empty $k.tls.clientSecret.name)) | quote }}
CRYPTOCAST_KAFKA_SASL_MECHANISM: {{ $k.sasl.mechanism | quote }}
CRYPTOCAST_KAFKA_SASL_USERNAME: {{ $k.sasl.username | quote }}
{{- end -}}

{{/* The volume mounts of the Kafka TLS Secrets (none without TLS or without them), for a Kafka client's container. */}}
{{- define "cryptocast.kafkaTlsMounts" -}}
{{- $t := .Values.kafka.tls -}}
{{- if and $t.enabled $t.caSecret.name }}
- name: kafka-ca
  mountPath: /etc/kafka-tls/ca
  readOnly: true
{{- end }}
{{- if and $t.enabled $t.clientSecret.name }}
- name: kafka-client
  mountPath: /etc/kafka-tls/client
  readOnly: true
{{- end }}
{{- end -}}

{{/* The volumes of cryptocast.kafkaTlsMounts: the Secrets, only the keys used, readable by the owner (uid 1000) only. */}}
{{- define "cryptocast.kafkaTlsVolumes" -}}
{{- $t := .Values.kafka.tls -}}
{{- if and $t.enabled $t.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ $t.caSecret.name }}
    items:
      - { key: {{ $t.caSecret.key }}, path: {{ $t.caSecret.key }} }
{{- end }}
{{- if and $t.enabled $t.clientSecret.name }}
- name: kafka-client
  secret:
    secretName: {{ $t.clientSecret.name }}
    defaultMode: 0400
    items:
      - { key: {{ $t.clientSecret.certKey }}, path: {{ $t.clientSecret.certKey }} }
      - { key: {{ $t.clientSecret.keyKey }}, path: {{ $t.clientSecret.keyKey }} }
{{- end }}
{{- end -}}

{{/*
The environment of one service: (dict "root" $ "service" NAME). Only what the service reads
(src/config/service-env.ts; a test checks the rendered env against it), non-secret values from the ConfigMap,
credentials from Secrets.
*/}}
{{- define "cryptocast.env" -}}
{{- $root := .root -}}
{{- $svc := .service -}}
{{- $v := $root.Values -}}
{{- $cfg := dict "root" $root -}}
{{- include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_LOG_LEVEL") $cfg) }}
{{- if ne $svc "trainer" }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_BUS") $cfg) }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_TOPIC_PREFIX") $cfg) }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_KAFKA_SESSION_TIMEOUT_MS") $cfg) }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_KAFKA_REFUSED_FOR_MS") $cfg) }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_KAFKA_REPLICATION_FACTOR") $cfg) }}
{{- include "cryptocast.kafkaSecurityEnv" (dict "root" $root "plain" false) }}
{{- end }}
{{- if has $svc (list "trades" "candles" "api") }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_PAIRS") $cfg) }}
{{- end }}
{{- if eq $svc "trades" }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_EXCHANGES") $cfg) }}
{{- end }}
{{- if eq $svc "candles" }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_INTERVAL") $cfg) }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_GRACE") $cfg) }}
{{- end }}
{{- /* The monitor too: under revise it keeps each minute's first emission, which its restarts score by. */}}
{{- if has $svc (list "candles" "monitor") }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_LATE_POLICY") $cfg) }}
{{- end }}
{{- if eq $svc "news" }}
{{- if $v.news.feeds }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_NEWS_FEEDS") $cfg) }}
{{- end }}
{{- with $v.news.cryptopanicTokenSecret }}{{ if .name }}
{{ include "cryptocast.fromSecret" (dict "name" "CRYPTOPANIC_TOKEN" "secret" .name "key" .key) }}
{{- end }}{{ end }}
{{- end }}
{{- if eq $svc "news-signals" }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_SENTIMENT_BACKEND") $cfg) }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_SENTIMENT_CACHE") $cfg) }}
{{- if eq $v.sentiment.backend "openai" }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_LLM_BASE_URL") $cfg) }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_LLM_MODEL_NAME") $cfg) }}
{{- with $v.sentiment.openai.apiKeySecret }}{{ if .name }}
{{ include "cryptocast.fromSecret" (dict "name" "CRYPTOCAST_LLM_API_KEY" "secret" .name "key" .key) }}
{{- end }}{{ end }}
{{- end }}
{{- if eq $v.sentiment.backend "local" }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_LLM_MODEL") $cfg) }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_LLM_MODE") $cfg) }}
{{- /* The model's threads: the pod's CPU limit rounded up to whole CPUs (llama.cpp alone counts the node's cores). */}}
- name: CRYPTOCAST_LLM_THREADS
  valueFrom:
    resourceFieldRef:
      containerName: {{ $svc }}
      resource: limits.cpu
      divisor: "1"
{{- end }}
{{- end }}
{{- /* One database holds the feature, predictions and errors stores (tables apart). */}}
{{- if has $svc (list "feature-writer" "trainer" "monitor" "api" "predictor") }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_STORE") $cfg) }}
{{- end }}
{{- if and (has $svc (list "feature-writer" "predictor" "api" "trainer" "monitor")) $v.postgresql.passwordSecret.name }}
{{ include "cryptocast.fromSecret" (dict "name" "PGPASSWORD" "secret" $v.postgresql.passwordSecret.name "key" $v.postgresql.passwordSecret.key) }}
{{- end }}
{{- if and (has $svc (list "feature-writer" "predictor" "api" "trainer" "monitor")) $v.postgresql.caSecret.name }}
- name: PGSSLROOTCERT
  value: {{ printf "/etc/cryptocast-tls/postgresql/%s" $v.postgresql.caSecret.key | quote }}
{{- end }}
{{- if has $svc (list "predictor" "api" "trainer" "monitor") }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_REGISTRY") $cfg) }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_MODEL_NAME") $cfg) }}
{{- if $v.registry.credentialsSecret }}
{{- range list "MLFLOW_TRACKING_TOKEN" "MLFLOW_TRACKING_USERNAME" "MLFLOW_TRACKING_PASSWORD" }}
{{ include "cryptocast.fromSecret" (dict "name" . "secret" $v.registry.credentialsSecret "key" . "optional" true) }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq $svc "api" }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_API_PORT") $cfg) }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_API_HOST") $cfg) }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_API_RATE") $cfg) }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_API_BURST") $cfg) }}
{{- if $v.api.corsOrigins }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_CORS_ORIGINS") $cfg) }}
{{- end }}
{{- if include "cryptocast.apiTrustProxy" $cfg.root }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_API_TRUST_PROXY") $cfg) }}
{{- end }}
{{- with $v.api.keysSecret }}{{ if .name }}
{{ include "cryptocast.fromSecret" (dict "name" "CRYPTOCAST_API_KEYS" "secret" .name "key" .key) }}
{{- end }}{{ end }}
{{- end }}
{{- if eq $svc "monitor" }}
{{- if $v.alerts.webhooksSecret }}
{{- range list "CRYPTOCAST_SLACK_WEBHOOK_URL" "CRYPTOCAST_DISCORD_WEBHOOK_URL" "CRYPTOCAST_ALERT_WEBHOOK_URL" "CRYPTOCAST_ALERT_WEBHOOK_TOKEN" }}
{{ include "cryptocast.fromSecret" (dict "name" . "secret" $v.alerts.webhooksSecret "key" . "optional" true) }}
{{- end }}
{{- end }}
{{- end }}
{{- if eq $svc "index-sink" }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_OPENSEARCH_URL") $cfg) }}
{{ include "cryptocast.fromConfig" (merge (dict "name" "CRYPTOCAST_INDEX_PREFIX") $cfg) }}
{{- with $v.opensearch.credentialsSecret }}{{ if .name }}
{{ include "cryptocast.fromSecret" (dict "name" "CRYPTOCAST_OPENSEARCH_USERNAME" "secret" .name "key" .usernameKey) }}
{{ include "cryptocast.fromSecret" (dict "name" "CRYPTOCAST_OPENSEARCH_PASSWORD" "secret" .name "key" .passwordKey) }}
{{- end }}{{ end }}
{{- with $v.opensearch.caSecret }}{{ if .name }}
- name: CRYPTOCAST_OPENSEARCH_CA
  value: {{ printf "/etc/cryptocast-tls/opensearch/%s" .key | quote }}
{{- end }}{{ end }}
{{- end }}
{{- end -}}

{{/* Pod and container security: non-root (the image's uid 1000), read-only root, no privileges. */}}
{{- define "cryptocast.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
fsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "cryptocast.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Pod-level settings shared by every workload. */}}
{{- define "cryptocast.podCommon" -}}
automountServiceAccountToken: false
securityContext:
  {{- include "cryptocast.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/*
The CA certificates of a service's TLS peers, from Secrets (dict "root" $ "service" NAME): PostgreSQL's for the store
users, OpenSearch's for the index sink, each read-only in a directory of its own (PGSSLROOTCERT and
CRYPTOCAST_OPENSEARCH_CA name the file in it). "cryptocast.caVolumeMounts" and "cryptocast.caVolumes" go together.
*/}}
{{- define "cryptocast.caVolumeMounts" -}}
{{- $v := .root.Values -}}
{{- if and (has .service (list "feature-writer" "predictor" "api" "trainer" "monitor")) $v.postgresql.caSecret.name }}
- name: postgresql-ca
  mountPath: /etc/cryptocast-tls/postgresql
  readOnly: true
{{- end }}
{{- if and (eq .service "index-sink") $v.opensearch.caSecret.name }}
- name: opensearch-ca
  mountPath: /etc/cryptocast-tls/opensearch
  readOnly: true
{{- end }}
{{- end -}}

{{- define "cryptocast.caVolumes" -}}
{{- $v := .root.Values -}}
{{- if and (has .service (list "feature-writer" "predictor" "api" "trainer" "monitor")) $v.postgresql.caSecret.name }}
- name: postgresql-ca
  secret:
    secretName: {{ $v.postgresql.caSecret.name }}
    items:
      - key: {{ $v.postgresql.caSecret.key }}
        path: {{ $v.postgresql.caSecret.key }}
{{- end }}
{{- if and (eq .service "index-sink") $v.opensearch.caSecret.name }}
- name: opensearch-ca
  secret:
    secretName: {{ $v.opensearch.caSecret.name }}
    items:
      - key: {{ $v.opensearch.caSecret.key }}
        path: {{ $v.opensearch.caSecret.key }}
{{- end }}
{{- end -}}
