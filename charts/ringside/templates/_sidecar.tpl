{{/*
Named templates that add Ringside to any pod spec. Call them with this chart's context:
`.` here, and `.Subcharts.ringside` in a parent chart that lists ringside as a dependency
(tested with Helm v3.22). docs/kubernetes.md and charts/tests/testdata/mychart show a
complete Deployment. Where each one goes in a pod spec:

  metadata.labels                     ringside.podLabels
  metadata.annotations                ringside.podAnnotations
  spec.terminationGracePeriodSeconds  ringside.terminationGracePeriodSeconds
  spec.initContainers                 ringside.initContainers  (interception; native sidecar)
  spec.containers                     ringside.containers      (classic sidecar)
  spec.volumes                        ringside.volumes
*/}}

{{/* Pod labels: what the PodMonitor selects. */}}
{{- define "ringside.podLabels" -}}
ringside.dev/sidecar: "true"
{{- end -}}

{{/* Pod annotations: Prometheus scrapes the admin port. */}}
{{- define "ringside.podAnnotations" -}}
{{- if .Values.metrics.annotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.ports.admin | quote }}
prometheus.io/path: /metrics
{{- end -}}
{{- end -}}

{{/* Grace period: drain + preStop + time for the app (checked by ringside.validate). */}}
{{- define "ringside.terminationGracePeriodSeconds" -}}
{{- int .Values.terminationGracePeriodSeconds -}}
{{- end -}}

{{/* Init containers (a YAML list, possibly empty): interception first, then a native sidecar. */}}
{{- define "ringside.initContainers" -}}
{{- $out := list -}}
{{- if .Values.interception.enabled -}}
{{- $out = append $out (include "ringside.interceptionContainer" .) -}}
{{- end -}}
{{- if .Values.nativeSidecar -}}
{{- $out = append $out (include "ringside.sidecar" .) -}}
{{- end -}}
{{- join "\n" $out -}}
{{- end -}}

{{/* Regular containers (a YAML list, possibly empty): the classic sidecar. */}}
{{- define "ringside.containers" -}}
{{- if not .Values.nativeSidecar -}}
{{- include "ringside.sidecar" . -}}
{{- end -}}
{{- end -}}

{{/* Pod volumes: the config directory (a ConfigMap volume, mounted whole, never subPath). */}}
{{- define "ringside.volumes" -}}
- name: ringside-config
  configMap:
    name: {{ include "ringside.configMapName" . }}
{{- if .Values.interception.enabled }}
- name: ringside-init-run
  emptyDir: {}
{{- end }}
{{- include "ringside.tlsVolume" . }}
{{- end -}}

{{/*
The TLS material's volume (none with tls.mode off): the certificate files (a Secret, or a
CSI driver such as csi-driver-spiffe), or the SPIRE agent's socket directory.
*/}}
{{- define "ringside.tlsVolume" -}}
{{- $t := .Values.tls -}}
{{- if ne $t.mode "off" }}
{{- if eq $t.source "secret" }}
- name: ringside-tls
  secret:
    secretName: {{ $t.secret.name }}
{{- else if eq $t.source "csi" }}
- name: ringside-tls
  csi:
    driver: {{ $t.csi.driver }}
    readOnly: true
    {{- $attrs := $t.csi.volumeAttributes | default dict }}
    {{- if eq $t.csi.driver "spiffe.csi.cert-manager.io" }}
    {{- $attrs = merge (deepCopy $attrs) (dict "spiffe.csi.cert-manager.io/fs-group" (printf "%d" (int .Values.runAsGroup))) }}
    {{- end }}
    {{- with $attrs }}
    volumeAttributes:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- else if eq $t.spire.socketVolume "csi" }}
- name: spiffe-workload-api
  csi:
    driver: csi.spiffe.io
    readOnly: true
{{- else }}
- name: spiffe-workload-api
  hostPath:
    path: {{ $t.spire.hostPath }}
    type: Directory
{{- end }}
{{- end }}
{{- end -}}

{{/* Where the SPIRE agent's socket directory is mounted in the Ringside container. */}}
{{- define "ringside.spireMount" -}}
/spiffe-workload-api
{{- end -}}

{{/* securityContext shared by Ringside's containers. */}}
{{- define "ringside.seccompProfile" -}}
seccompProfile:
  type: {{ .Values.seccompProfile.type }}
  {{- if eq .Values.seccompProfile.type "Localhost" }}
  localhostProfile: {{ .Values.seccompProfile.localhostProfile }}
  {{- end }}
{{- end -}}

{{/*
The Ringside container (one YAML list item). With nativeSidecar it carries
`restartPolicy: Always` and belongs in initContainers; ringside.initContainers and
ringside.containers put it in the right list.
*/}}
{{- define "ringside.sidecar" -}}
{{- include "ringside.validate" . -}}
- name: ringside
  image: {{ include "ringside.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if .Values.nativeSidecar }}
  restartPolicy: Always
  {{- end }}
  args:
    - run
    - -c
    - /etc/ringside/ringside.yaml
    - --runtime
    - {{ .Values.runtime }}
    {{- if gt (int .Values.workers) 0 }}
    - --workers
    - {{ .Values.workers | quote }}
    {{- end }}
    {{- if gt (int .Values.ioUringWorkers) 0 }}
    {{- if ne .Values.runtime "split" }}
    {{- fail "ioUringWorkers is only valid with runtime: split" }}
    {{- end }}
    - --io-uring-workers
    - {{ .Values.ioUringWorkers | quote }}
    {{- end }}
    {{- if and (eq .Values.runtime "split") (eq (int .Values.workers) 1) }}
    {{- fail "runtime: split needs workers 0 (at least 2, from the CPU limit) or at least 2" }}
    {{- end }}
    - --log-level
    - {{ .Values.logLevel | quote }}
    - --log-format
    - {{ .Values.logFormat }}
    {{- with .Values.accessLog }}
    - --access-log
    - {{ . | quote }}
    {{- end }}
    - --drain-timeout
    - {{ printf "%ds" (int .Values.drainTimeoutSeconds) }}
  ports:
    - name: ringside-in
      containerPort: {{ .Values.ports.inbound }}
      protocol: TCP
    - name: ringside-admin
      containerPort: {{ .Values.ports.admin }}
      protocol: TCP
  volumeMounts:
    - name: ringside-config
      mountPath: /etc/ringside
      readOnly: true
    {{- if ne .Values.tls.mode "off" }}
    {{- if eq .Values.tls.source "spire" }}
    - name: spiffe-workload-api
      mountPath: {{ include "ringside.spireMount" . }}
      readOnly: true
    {{- else }}
    - name: ringside-tls
      mountPath: {{ .Values.tls.mountPath }}
      readOnly: true
    {{- end }}
    {{- end }}
  startupProbe:
    httpGet:
      path: /ready
      port: {{ .Values.ports.admin }}
    {{- toYaml .Values.probes.startup | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /ready
      port: {{ .Values.ports.admin }}
    {{- toYaml .Values.probes.readiness | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /live
      port: {{ .Values.ports.admin }}
    {{- toYaml .Values.probes.liveness | nindent 4 }}
  {{- if gt (int .Values.preStopSleepSeconds) 0 }}
  lifecycle:
    preStop:
      sleep:
        seconds: {{ int .Values.preStopSleepSeconds }}
  {{- end }}
  {{- with .Values.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: {{ int .Values.runAsUser }}
    runAsGroup: {{ int .Values.runAsGroup }}
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities:
      drop: [ALL]
    {{- include "ringside.seccompProfile" . | nindent 4 }}
{{- end -}}

{{/* The optional interception init container: `ringside iptables`, run once as root. */}}
{{- define "ringside.interceptionContainer" -}}
{{- $i := .Values.interception -}}
{{- $img := mergeOverwrite (deepCopy .Values.image) ($i.image | default dict) -}}
{{- $skipIn := concat (list .Values.ports.admin) $i.skipInboundPorts | uniq -}}
- name: ringside-init
  image: {{ include "ringside.image" (dict "Values" (dict "image" $img) "Chart" .Chart) }}
  imagePullPolicy: {{ $img.pullPolicy }}
  args:
    - iptables
    - --proxy-uid
    - {{ .Values.runAsUser | quote }}
    - --inbound-port
    - {{ .Values.ports.inbound | quote }}
    - --outbound-port
    - {{ $i.outboundPort | quote }}
    - --skip-inbound-ports
    - {{ join "," $skipIn | quote }}
    {{- with $i.skipOutboundPorts }}
    - --skip-outbound-ports
    - {{ join "," . | quote }}
    {{- end }}
    {{- with $i.skipOutboundCidrs }}
    - --skip-outbound-cidrs
    - {{ join "," . | quote }}
    {{- end }}
  volumeMounts:
    - name: ringside-init-run
      mountPath: /run
  {{- with $i.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: false
    runAsUser: 0
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities:
      drop: [ALL]
      add: [NET_ADMIN, NET_RAW]
    {{- include "ringside.seccompProfile" . | nindent 4 }}
{{- end -}}

{{/* The Ringside config file (ringside.yaml), from .Values.config. */}}
{{- define "ringside.config" -}}
{{- $c := .Values.config -}}
{{- if $c.raw -}}
{{ $c.raw }}
{{- else -}}
{{- $in := $c.inbound -}}
# Rendered by the ringside chart; schema in docs/config.md. Ringside reloads it live.
admin:
  address: 0.0.0.0:{{ .Values.ports.admin }}
{{- $t := .Values.tls }}
{{- if and (ne $t.mode "off") (eq $t.source "spire") }}
identity:
  spiffe_socket: unix://{{ include "ringside.spireMount" . }}/{{ $t.spire.socketFile }}
{{- end }}
listeners:
  - name: {{ $in.name }}
    address: 0.0.0.0:{{ .Values.ports.inbound }}
    protocol: {{ $in.protocol }}
    {{- if eq $in.protocol "tcp" }}
    cluster: {{ $in.cluster }}
    {{- else }}
    routes:
      {{- toYaml $in.routes | nindent 6 }}
    {{- end }}
    {{- with $in.timeouts }}
    timeouts:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with $in.limits }}
    limits:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- if ne $t.mode "off" }}
    tls:
      mode: {{ $t.mode }}
      {{- if eq $t.source "spire" }}
      identity: spiffe
      {{- else }}
      cert: {{ $t.mountPath }}/tls.crt
      key: {{ $t.mountPath }}/tls.key
      {{- if $t.mutual }}
      client_ca: {{ $t.mountPath }}/ca.crt
      {{- end }}
      {{- end }}
    {{- with $t.allow }}
    authz:
      allow: {{ toJson . }}
    {{- end }}
    {{- end }}
  {{- if .Values.interception.enabled }}
  # Outbound TCP that `ringside iptables` redirected here goes on to where the app was
  # connecting (SO_ORIGINAL_DST), or to a cluster listed in interception.destinations.
  - name: outbound
    address: 127.0.0.1:{{ .Values.interception.outboundPort }}
    protocol: tcp
    original_dst: true
    {{- with .Values.interception.destinations }}
    destinations:
      {{- toYaml . | nindent 6 }}
    {{- end }}
  {{- end }}
  {{- with $c.extraListeners }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
clusters:
  {{- toYaml $c.clusters | nindent 2 }}
{{- end -}}
{{- end -}}
