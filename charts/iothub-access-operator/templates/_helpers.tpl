{{/*
Chart name, overridable with nameOverride.
*/}}
{{- define "iothub-access-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full resource name: the release name, plus the chart name unless the release name contains it.
*/}}
{{- define "iothub-access-operator.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "iothub-access-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "iothub-access-operator.labels" -}}
helm.sh/chart: {{ include "iothub-access-operator.chart" . }}
{{ include "iothub-access-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: iothub-access-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels (immutable once installed).
*/}}
{{- define "iothub-access-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "iothub-access-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "iothub-access-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "iothub-access-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
"true" when leader election is on: always with more than one replica, or when asked for.
*/}}
{{- define "iothub-access-operator.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) }}true{{- end }}
{{- end }}

{{/*
Container image reference; the tag defaults to the chart's appVersion.
*/}}
{{- define "iothub-access-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
Fails rendering on contradictory Azure credential settings.
*/}}
{{- define "iothub-access-operator.validateAzure" -}}
{{- $azure := .Values.azure }}
{{- if $azure.clientSecret.existingSecret }}
{{- if $azure.workloadIdentity.enabled }}
{{- fail "azure.clientSecret.existingSecret and azure.workloadIdentity.enabled are mutually exclusive: set azure.workloadIdentity.enabled=false to sign in with a client secret" }}
{{- end }}
{{- if not $azure.clientId }}
{{- fail "azure.clientId is required with azure.clientSecret.existingSecret" }}
{{- end }}
{{- if not $azure.tenantId }}
{{- fail "azure.tenantId is required with azure.clientSecret.existingSecret" }}
{{- end }}
{{- end }}
{{- end }}
