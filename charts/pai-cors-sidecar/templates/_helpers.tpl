{{/* Names and labels, as in the prometheus-community charts. */}}
{{- define "pai.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pai.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "pai.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pai.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pai.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pai.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pai-cors-sidecar
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "pai.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pai.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "pai.configMapName" -}}
{{- printf "%s-config" (include "pai.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* repository[:tag][@digest]; a digest wins over a floating tag. */}}
{{- define "pai.image" -}}
{{- $tag := .image.tag | default .default -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
A sidecar duration ("250ms", "30s", "5m", "1h"; the schema enforces the form) in whole seconds,
rounded up, so that grace periods computed from it are never too short.
*/}}
{{- define "pai.seconds" -}}
{{- $d := toString . -}}
{{- if hasSuffix "ms" $d -}}
{{- div (add (trimSuffix "ms" $d | int) 999) 1000 -}}
{{- else if hasSuffix "s" $d -}}
{{- trimSuffix "s" $d | int -}}
{{- else if hasSuffix "m" $d -}}
{{- mul (trimSuffix "m" $d | int) 60 -}}
{{- else -}}
{{- mul (trimSuffix "h" $d | int) 3600 -}}
{{- end -}}
{{- end -}}

{{/*
Native sidecars (Kubernetes >= 1.29, "Sidecar containers"): an older API server drops
`restartPolicy` from an init container, which then never finishes and the pod never starts. Refuse
to render instead.
*/}}
{{- define "pai.native" -}}
{{- if .Values.sidecar.native -}}
{{- if not (semverCompare ">=1.29.0-0" .Capabilities.KubeVersion.Version) -}}
{{- fail (printf "sidecar.native needs Kubernetes >= 1.29 (native sidecar containers); this cluster is %s. Set sidecar.native=false." .Capabilities.KubeVersion.Version) -}}
{{- end -}}
true
{{- end -}}
{{- end -}}

{{/*
The Private AI container's preStop sleep (docs/OPERATIONS.md, "Shutdown"). Regular container: it
must outlive the sidecar's drain (delay + timeout). Native sidecar: the sidecar is stopped only
after it, so it must cover endpoint propagation (5 s) plus the drain timeout for requests in flight.
*/}}
{{- define "pai.preStopSeconds" -}}
{{- if not (kindIs "invalid" .Values.privateai.preStopSleepSeconds) -}}
{{- .Values.privateai.preStopSleepSeconds -}}
{{- else if include "pai.native" . -}}
{{- add 5 (include "pai.seconds" .Values.shutdown.timeout) -}}
{{- else -}}
{{- add (include "pai.seconds" .Values.shutdown.delay) (include "pai.seconds" .Values.shutdown.timeout) -}}
{{- end -}}
{{- end -}}

{{- define "pai.gracePeriod" -}}
{{- if not (kindIs "invalid" .Values.terminationGracePeriodSeconds) -}}
{{- .Values.terminationGracePeriodSeconds -}}
{{- else if include "pai.native" . -}}
{{- /* preStop, ~10 s for the API container to stop, then the sidecar's own drain */ -}}
{{- add (include "pai.preStopSeconds" .) 10 (include "pai.seconds" .Values.shutdown.delay) (include "pai.seconds" .Values.shutdown.timeout) -}}
{{- else -}}
{{- add (include "pai.preStopSeconds" .) 5 -}}
{{- end -}}
{{- end -}}

{{/*
The sidecar's configuration blocks and the ones it applies only at start, generated from its schema
(files/sidecar-blocks.json, written by `npm run chart:schema`).
*/}}
{{- define "pai.sidecarBlocks" -}}
{{- $text := .Files.Get "files/sidecar-blocks.json" -}}
{{- if not ($text | fromJson).blocks -}}
{{- fail "files/sidecar-blocks.json is missing or empty: run `npm run chart:schema`" -}}
{{- end -}}
{{- $text -}}
{{- end -}}

{{/*
The sidecar's configuration file: the values blocks that carry the sidecar's own field names. The
chart owns the listen hosts and the upstream URL (the container is always on localhost in the pod).
Empty `routes` and `shadow` fall back to the sidecar's defaults rather than meaning "none"; an empty
`auth` is left out (authentication off). auth.apiKeys names a Secret: the sidecar is given the path
where the deployment mounts it (API_KEYS_DIR in charts/schema.ts).
*/}}
{{- define "pai.config" -}}
{{- $config := dict -}}
{{- range (include "pai.sidecarBlocks" . | fromJson).blocks -}}
{{- $_ := set $config . (index $.Values .) -}}
{{- end -}}
{{- $server := merge (dict "host" "0.0.0.0") (deepCopy .Values.server) -}}
{{- if .Values.tls.enabled -}}
{{- $_ := set $server "tls" (dict "certFile" "/etc/pai-cors-sidecar-tls/tls.crt" "keyFile" "/etc/pai-cors-sidecar-tls/tls.key" "minVersion" .Values.tls.minVersion) -}}
{{- end -}}
{{- $_ := set $config "server" $server -}}
{{- $_ := set $config "admin" (merge (dict "host" "0.0.0.0") (deepCopy .Values.admin)) -}}
{{- $_ := set $config "upstream" (merge (dict "url" (printf "http://127.0.0.1:%d" (int .Values.privateai.port))) (deepCopy .Values.upstream)) -}}
{{- range list "routes" "shadow" "auth" -}}
{{- if empty (index $config .) }}{{ $_ := unset $config . }}{{ end -}}
{{- end -}}
{{- with .Values.auth.apiKeys }}
{{- $_ := set $config "auth" (merge (dict "apiKeys" (dict "file" "/etc/pai-cors-sidecar-api-keys/keys")) (omit (deepCopy $.Values.auth) "apiKeys")) -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/*
What the sidecar applies only at start (`restartOnly`, from RESTART_ONLY in sidecar/config/reload.ts):
changing it must roll the pods. The hot-reloaded policy (cors, routes, limits, shadow, websocket, log)
is left out, so that a `helm upgrade` that only changes origins does not restart the GPU pod and
reload the model.
*/}}
{{- define "pai.restartChecksum" -}}
{{- $config := include "pai.config" . | fromYaml -}}
{{- $restart := dict -}}
{{- range (include "pai.sidecarBlocks" . | fromJson).restartOnly -}}
{{- $_ := set $restart . (index $config .) -}}
{{- end -}}
{{- $restart | toJson | sha256sum -}}
{{- end -}}

{{/*
An origin the policy allows, for `helm test` and NOTES.txt: tests.origin, else the first entry of
cors.allowedOrigins made concrete (a wildcard subdomain gets a label, a wildcard port a number).
*/}}
{{- define "pai.testOrigin" -}}
{{- if .Values.tests.origin -}}
{{- .Values.tests.origin -}}
{{- else if .Values.cors.allowedOrigins -}}
{{- $first := first .Values.cors.allowedOrigins -}}
{{- if eq $first "*" -}}
https://helm-test.invalid
{{- else -}}
{{- $first | replace "://*." "://helm-test." | replace ":*" ":8443" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The kubernetes.io/tls Secret the sidecar serves (tls.enabled): tls.existingSecret, or the one the
cert-manager Certificate writes. Refuses a configuration that names none.
*/}}
{{- define "pai.tlsSecretName" -}}
{{- if .Values.tls.existingSecret -}}
{{- .Values.tls.existingSecret -}}
{{- else if .Values.tls.certManager.enabled -}}
{{- printf "%s-tls" (include "pai.fullname" .) -}}
{{- else -}}
{{- fail "tls.enabled needs a certificate: set tls.existingSecret (a kubernetes.io/tls Secret) or tls.certManager.enabled" -}}
{{- end -}}
{{- end -}}

{{/* The Service's port and its scheme: https with tls.enabled. */}}
{{- define "pai.scheme" -}}{{ if .Values.tls.enabled }}https{{ else }}http{{ end }}{{- end -}}
{{- define "pai.servicePort" -}}{{ if .Values.tls.enabled }}{{ .Values.service.httpsPort }}{{ else }}{{ .Values.service.port }}{{ end }}{{- end -}}
