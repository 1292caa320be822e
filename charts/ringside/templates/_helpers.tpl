{{/*
Helpers shared by this chart's own objects. The named templates that add Ringside to a pod
are in _sidecar.tpl. Every helper here and there reads only .Values, .Release and .Chart of
the context it is given, so a parent chart calls them with `.Subcharts.ringside`.
*/}}

{{/*
The base name of the ConfigMap and the example's objects. Helm allows dots in release names,
a Service name (a DNS-1035 label) does not: they become dashes.
*/}}
{{- define "ringside.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains "ringside" .Release.Name -}}
{{- .Release.Name | replace "." "-" | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-ringside" (.Release.Name | replace "." "-") | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The ConfigMap holding ringside.yaml. */}}
{{- define "ringside.configMapName" -}}
{{- printf "%s-config" (include "ringside.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of this chart's own objects. */}}
{{- define "ringside.labels" -}}
app.kubernetes.io/name: ringside
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- if .Chart }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
{{- end -}}

{{/* The Ringside image reference. */}}
{{- define "ringside.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default (.Chart | default dict).AppVersion | default "latest") -}}
{{- end -}}

{{/*
Check the values that would make a broken pod; rendering fails with the reason.
Called by ringside.sidecar, so a parent chart's Deployment gets the same checks.
*/}}
{{- define "ringside.validate" -}}
{{- $grace := int .Values.terminationGracePeriodSeconds -}}
{{- $need := add (int .Values.drainTimeoutSeconds) (int .Values.preStopSleepSeconds) -}}
{{- if le $grace $need -}}
{{- fail (printf "ringside: terminationGracePeriodSeconds (%d) must exceed drainTimeoutSeconds + preStopSleepSeconds (%d), or the kubelet kills Ringside mid-drain" $grace $need) -}}
{{- end -}}
{{- if and (eq .Values.seccompProfile.type "Localhost") (not .Values.seccompProfile.localhostProfile) -}}
{{- fail "ringside: seccompProfile.type Localhost needs seccompProfile.localhostProfile, e.g. profiles/ringside-io-uring.json" -}}
{{- end -}}
{{- if and (eq .Values.config.inbound.protocol "tcp") (not .Values.config.raw) (not .Values.config.inbound.cluster) -}}
{{- fail "ringside: config.inbound.protocol tcp needs config.inbound.cluster" -}}
{{- end -}}
{{- $t := .Values.tls -}}
{{- if ne $t.mode "off" -}}
{{- if and (eq $t.source "secret") (not $t.secret.name) -}}
{{- fail "ringside: tls.source secret needs tls.secret.name (a kubernetes.io/tls Secret with tls.crt, tls.key and ca.crt)" -}}
{{- end -}}
{{- if and (eq $t.source "spire") (not $t.mutual) -}}
{{- fail "ringside: tls.source spire always verifies client certificates against the SPIFFE trust bundle; tls.mutual false cannot be honoured" -}}
{{- end -}}
{{- end -}}
{{- if and $t.allow (or (eq $t.mode "off") (not $t.mutual)) -}}
{{- fail "ringside: tls.allow needs tls.mode strict or permissive with tls.mutual: without client certificates nobody has an identity" -}}
{{- end -}}
{{- end -}}
