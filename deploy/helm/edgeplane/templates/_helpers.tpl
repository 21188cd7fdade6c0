{{/* Names and labels shared by every template. */}}

{{- define "edgeplane.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "edgeplane.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of a component: (dict "ctx" $ "component" "scheduler") */}}
{{- define "edgeplane.selector" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "edgeplane.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "edgeplane.controllerName" -}}
{{- printf "%s-controller" (include "edgeplane.fullname" .) -}}
{{- end -}}

{{- define "edgeplane.schedulerName" -}}
{{- printf "%s-scheduler" (include "edgeplane.fullname" .) -}}
{{- end -}}

{{- define "edgeplane.deschedulerName" -}}
{{- printf "%s-descheduler" (include "edgeplane.fullname" .) -}}
{{- end -}}

{{- define "edgeplane.webhookService" -}}
{{- printf "%s-webhook" (include "edgeplane.fullname" .) -}}
{{- end -}}

{{- define "edgeplane.webhookSecret" -}}
{{- printf "%s-webhook-cert" (include "edgeplane.fullname" .) -}}
{{- end -}}

{{/* "true" when the gate webhook is deployed: enabled, gate mode, controller present. */}}
{{- define "edgeplane.webhookActive" -}}
{{- if and .Values.webhook.enabled .Values.controller.enabled (eq .Values.scheduler.mode "gate") -}}
true
{{- end -}}
{{- end -}}

{{/* "true" when the controller keeps the webhook's certificate renewed: the webhook is
deployed, its certificate was not given in the values, and cert-manager does not issue it. */}}
{{- define "edgeplane.webhookKeeper" -}}
{{- $c := .Values.webhook.certificate -}}
{{- if and (include "edgeplane.webhookActive" .) (not (or $c.cert $c.key)) (not $c.certManager.enabled) -}}
true
{{- end -}}
{{- end -}}

{{/* The gRPC parties (space-separated) when tls.enabled: each has a certificate. */}}
{{- define "edgeplane.grpcParties" -}}
{{- $parties := list -}}
{{- if .Values.tls.enabled -}}
{{- if .Values.netctl.enabled }}{{ $parties = append $parties "netctl" }}{{ end -}}
{{- if .Values.scheduler.enabled }}{{ $parties = append $parties "scheduler" }}{{ end -}}
{{- if .Values.descheduler.enabled }}{{ $parties = append $parties "descheduler" }}{{ end -}}
{{- end -}}
{{- join " " $parties -}}
{{- end -}}

{{/* "true" when the controller keeps the gRPC certificates: TLS on without cert-manager. */}}
{{- define "edgeplane.grpcKeeper" -}}
{{- if and .Values.controller.enabled .Values.tls.enabled (not .Values.tls.certManager.enabled) (include "edgeplane.grpcParties" .) -}}
true
{{- end -}}
{{- end -}}

{{/* "true" when the controller runs the certificate keeper at all. */}}
{{- define "edgeplane.certificateKeeper" -}}
{{- if or (include "edgeplane.webhookKeeper" .) (include "edgeplane.grpcKeeper" .) -}}
true
{{- end -}}
{{- end -}}

{{/* The keeper's CA Secret. */}}
{{- define "edgeplane.caSecret" -}}
{{- printf "%s-ca" (include "edgeplane.fullname" .) -}}
{{- end -}}

{{/* Environment every component gets: its pod name and namespace (identity, Lease). */}}
{{- define "edgeplane.env" -}}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: POD_NAMESPACE
  valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
- name: RUST_LOG
  value: {{ .Values.logLevel | quote }}
{{- end -}}

{{- define "edgeplane.hubName" -}}
{{- printf "%s-hub" (include "edgeplane.fullname" .) -}}
{{- end -}}

{{- define "edgeplane.netctlName" -}}
{{- printf "%s-netctl" (include "edgeplane.fullname" .) -}}
{{- end -}}

{{/*
The affinity of a component's pods: (dict "ctx" $ "component" "scheduler"). Its own
`affinity` value when set; else, with more than one replica, anti-affinity across nodes
(podAntiAffinity: soft prefers, hard requires), so that one node going down does not take
every replica.
*/}}
{{- define "edgeplane.affinity" -}}
{{- $values := index .ctx.Values .component -}}
{{- if $values.affinity }}
affinity:
  {{- toYaml $values.affinity | nindent 2 }}
{{- else if gt (int $values.replicas) 1 }}
affinity:
  podAntiAffinity:
    {{- if eq .ctx.Values.podAntiAffinity "hard" }}
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "edgeplane.selector" (dict "ctx" .ctx "component" .component) | nindent 12 }}
    {{- else }}
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "edgeplane.selector" (dict "ctx" .ctx "component" .component) | nindent 14 }}
    {{- end }}
{{- end }}
{{- end -}}

{{/* The components whose metrics Prometheus scrapes, when enabled. */}}
{{- define "edgeplane.components" -}}
controller scheduler descheduler netctl hub
{{- end -}}

{{/* A component's gRPC certificate Secret (tls.enabled): <release>-<component>-grpc-tls. */}}
{{- define "edgeplane.grpcTlsSecret" -}}
{{- printf "%s-%s-grpc-tls" (include "edgeplane.fullname" .ctx) .component -}}
{{- end -}}
