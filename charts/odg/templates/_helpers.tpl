{{/* Names, labels and shared pieces of the odg chart. */}}

{{- define "odg.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "odg.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "odg.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "odg.selectorLabels" -}}
app.kubernetes.io/name: {{ include "odg.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "odg.labels" -}}
helm.sh/chart: {{ include "odg.chart" . }}
{{ include "odg.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "odg.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "odg.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "odg.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The service's base URL inside the cluster, for the extensions. */}}
{{- define "odg.serviceUrl" -}}
{{- printf "http://%s.%s.svc:%v" (include "odg.fullname" .) .Release.Namespace .Values.service.port }}
{{- end }}

{{/* The scrape labels that select this release's pods in Prometheus (ServiceMonitor target labels). */}}
{{- define "odg.promSelector" -}}
{{- printf "namespace=\"%s\",service=\"%s\"" .Release.Namespace (include "odg.fullname" .) }}
{{- end }}

{{/* Routes that are not work: probes and scrapes never count as load. */}}
{{- define "odg.operationalRoutes" -}}
/live|/ready|/metrics
{{- end }}

{{/* The HPA behaviour, shared by the HPA and KEDA's HPA config. */}}
{{- define "odg.behavior" -}}
scaleUp:
  {{- toYaml .Values.autoscaling.behavior.scaleUp | nindent 2 }}
scaleDown:
  {{- toYaml .Values.autoscaling.behavior.scaleDown | nindent 2 }}
{{- end }}

{{/* Pod and container security: non-root, no privilege escalation, read-only root filesystem. */}}
{{- define "odg.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "odg.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end }}

{{/* The Secret-backed variable of one key, if a Secret is configured. */}}
{{- define "odg.secretEnv" -}}
{{- $root := index . 0 }}{{- $name := index . 1 }}{{- $key := index . 2 }}{{- $optional := index . 3 }}
{{- if and $root.Values.secrets.existingSecret $key }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.secrets.existingSecret }}
      key: {{ $key }}
      optional: {{ $optional }}
{{- end }}
{{- end }}

{{/* Fail early on combinations that cannot work. */}}
{{- define "odg.validate" -}}
{{- $pods := int .Values.replicas }}
{{- if and (eq .Values.database.mode "postgres") (not .Values.secrets.existingSecret) }}
{{- fail "database.mode postgres needs secrets.existingSecret: a Secret with the PostgreSQL URL (postgres://user:password@host:5432/db) under secrets.databaseUrlKey. For a single-pod trial without a database server, set database.mode: sqlite with replicas: 1 and autoscaling.mode: none" }}
{{- end }}
{{- if and (eq .Values.database.mode "sqlite") (or (ne .Values.autoscaling.mode "none") (gt $pods 1)) }}
{{- fail (printf "database.mode sqlite with %s: each pod would keep its own SQLite file in an emptyDir, so a metadata write would reach one pod only and be lost when that pod goes. Use database.mode: postgres (the URL in secrets.existingSecret), or replicas: 1 with autoscaling.mode: none" (ternary (printf "%d replicas" $pods) (printf "autoscaling (%s): the autoscaler adds pods" .Values.autoscaling.mode) (eq .Values.autoscaling.mode "none"))) }}
{{- end }}
{{- if and .Values.config.database .Values.config.database.url }}
{{- fail "config.database.url would put the database password into a ConfigMap: put the URL into secrets.existingSecret under secrets.databaseUrlKey" }}
{{- end }}
{{- if and .Values.networkPolicy.enabled (eq .Values.database.mode "postgres") (not .Values.networkPolicy.egress.postgres.to) }}
{{- fail "networkPolicy.enabled denies every connection not allowed: set networkPolicy.egress.postgres.to to the PostgreSQL server's peers (ipBlock, namespaceSelector or podSelector)" }}
{{- end }}
{{- if and .Values.networkPolicy.enabled .Values.cache.redis.enabled (not .Values.networkPolicy.egress.redis.to) }}
{{- fail "networkPolicy.enabled denies every connection not allowed: set networkPolicy.egress.redis.to to the Redis server's peers" }}
{{- end }}
{{- if and .Values.httpRoute.enabled (not .Values.httpRoute.parentRefs) }}
{{- fail "httpRoute.enabled needs httpRoute.parentRefs: the Gateway to attach to" }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.hosts) }}
{{- fail "ingress.enabled needs at least one entry in ingress.hosts" }}
{{- end }}
{{- if and .Values.cache.redis.enabled (not .Values.secrets.existingSecret) }}
{{- fail "cache.redis.enabled needs secrets.existingSecret with the Redis URL under secrets.redisUrlKey" }}
{{- end }}
{{- if lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas) }}
{{- fail "autoscaling.maxReplicas must be >= autoscaling.minReplicas" }}
{{- end }}
{{- if and (gt (int .Values.extensions.cacheManager.pruneBudgetMiB) 0) (not .Values.cache.redis.enabled) }}
{{- fail "extensions.cacheManager.pruneBudgetMiB needs cache.redis.enabled" }}
{{- end }}
{{- end }}

{{/* NetworkPolicy egress rules. */}}
{{/* DNS: every pod of the release resolves names through the cluster DNS in kube-system. */}}
{{- define "odg.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
  ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
{{- end }}
{{- define "odg.egressRule" -}}
{{- $rule := index . 0 -}}
- to:
    {{- toYaml $rule.to | nindent 4 }}
  ports:
    {{- range $rule.ports }}
    - {protocol: TCP, port: {{ . }}}
    {{- end }}
{{- end }}
