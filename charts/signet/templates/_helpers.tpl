{{/* Chart name. */}}
{{- define "signet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart unless the release name already contains the chart name. */}}
{{- define "signet.fullname" -}}
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

{{/* Labels on every object. */}}
{{- define "signet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "signet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the controller pods. */}}
{{- define "signet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "signet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the controller runs as. */}}
{{- define "signet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "signet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Values added after chart 0.1.0, read with their defaults: `helm upgrade --reuse-values` from a 0.1.0
release reuses that release's values only, without the new defaults from values.yaml.
*/}}
{{- define "signet.sops" -}}
{{- toYaml (.Values.sops | default dict) }}
{{- end }}
{{- define "signet.providerBackoffMax" -}}
{{- (.Values.externalSecrets | default dict).providerBackoffMax | default "5m" }}
{{- end }}
{{/* The ExternalSecret values, absent ones empty (their defaults are applied where used). */}}
{{- define "signet.externalSecrets" -}}
{{- toYaml (.Values.externalSecrets | default dict) }}
{{- end }}
{{/* The TokenRequest rule, narrowed to externalSecrets.serviceAccountTokenNames when given. */}}
{{- define "signet.tokenRule" -}}
- apiGroups: [""]
  resources: ["serviceaccounts/token"]
  verbs: ["create"]
  {{- with (include "signet.externalSecrets" . | fromYaml).serviceAccountTokenNames }}
  resourceNames:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{/* Booleans that are off unless explicitly true (absent = the default, false). */}}
{{- define "signet.serviceAccountTokens" -}}
{{- eq (toString (.Values.externalSecrets | default dict).serviceAccountTokens) "true" }}
{{- end }}
{{/* Booleans: "true" unless explicitly false (absent = the default, true). */}}
{{- define "signet.installSignetCRDs" -}}
{{- ne (toString .Values.installSignetCRDs) "false" }}
{{- end }}
{{- define "signet.guardSecretDeletion" -}}
{{- ne (toString .Values.rbac.guardSecretDeletion) "false" }}
{{- end }}

{{/* The Service kubeseal reaches through the API server proxy. */}}
{{- define "signet.serviceName" -}}
{{- default (include "signet.fullname" .) .Values.service.name }}
{{- end }}
