{{/* The chart name, or nameOverride. */}}
{{- define "dli-stop-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: the release name alone when it already contains the chart
name, so `helm install dli-stop-operator` gives the kustomize base's names.
*/}}
{{- define "dli-stop-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "dli-stop-operator.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "dli-stop-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "dli-stop-operator.labels" -}}
helm.sh/chart: {{ include "dli-stop-operator.chart" . }}
app.kubernetes.io/name: {{ include "dli-stop-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: dli-stop-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* What the Deployment, the PodDisruptionBudget and the metrics Service select. */}}
{{- define "dli-stop-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dli-stop-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{/* The metrics Service's own selectable labels, which the ServiceMonitor matches. */}}
{{- define "dli-stop-operator.metricsSelectorLabels" -}}
app.kubernetes.io/name: {{ include "dli-stop-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: metrics
{{- end }}

{{- define "dli-stop-operator.metricsServiceName" -}}
{{- printf "%s-metrics" (include "dli-stop-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "true" when the operator runs with --leader-elect, else "". */}}
{{- define "dli-stop-operator.leaderElect" -}}
{{- $enabled := .Values.leaderElection.enabled }}
{{- if kindIs "invalid" $enabled }}
{{- if gt (int .Values.replicaCount) 1 }}true{{ end }}
{{- else if $enabled }}true
{{- else if gt (int .Values.replicaCount) 1 }}
{{- fail "leaderElection.enabled=false with replicaCount > 1 would let every replica reconcile: enable leader election or run one replica" }}
{{- end }}
{{- end }}

{{- define "dli-stop-operator.leaseName" -}}
{{- default (include "dli-stop-operator.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}
