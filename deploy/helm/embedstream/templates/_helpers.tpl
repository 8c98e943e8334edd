{{/* Names and labels of the embedstream chart. */}}

{{- define "embedstream.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's name, with the chart's unless it has it already. */}}
{{- define "embedstream.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "embedstream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "embedstream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "embedstream.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "embedstream.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* StatefulSet when the embedded store keeps its data on a volume per pod, else Deployment. */}}
{{- define "embedstream.persistent" -}}
{{- if and .Values.store.enabled .Values.store.persistence.enabled -}}true{{- end -}}
{{- end -}}
{{- define "embedstream.workloadKind" -}}
{{- if include "embedstream.persistent" . -}}StatefulSet{{- else -}}Deployment{{- end -}}
{{- end -}}

{{/* serve's config file: the values' `config`, with the port and the store set by the chart. */}}
{{- define "embedstream.config" -}}
{{- $chart := dict "http" (dict "port" (int .Values.service.port)) "store" (dict "enabled" .Values.store.enabled "dir" "/var/lib/embedstream/data") -}}
{{- $config := mergeOverwrite (deepCopy .Values.config) $chart -}}
{{- toYaml $config -}}
{{- end -}}

{{/* The environment from Secrets: each key as the variable serve reads. */}}
{{- define "embedstream.secretEnv" -}}
{{- with .Values.auth.existingSecret }}
- name: EMBEDSTREAM_AUTH_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ . | quote }}, key: {{ $.Values.auth.tokenKey | quote }}}
- name: EMBEDSTREAM_AUTH_READ_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ . | quote }}, key: {{ $.Values.auth.readTokenKey | quote }}, optional: true}
{{- end }}
{{- with .Values.postgres.existingSecret }}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ . | quote }}, key: {{ $.Values.postgres.passwordKey | quote }}}
{{- end }}
{{- with .Values.qdrant.existingSecret }}
- name: QDRANT_API_KEY
  valueFrom:
    secretKeyRef: {name: {{ . | quote }}, key: {{ $.Values.qdrant.apiKeyKey | quote }}}
{{- end }}
{{- with .Values.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef: {name: {{ . | quote }}, key: {{ $.Values.redis.urlKey | quote }}}
{{- end }}
{{- end -}}
