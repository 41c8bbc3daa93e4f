{{/*
The sidecar container, rendered either in `containers` or, as a native sidecar, in `initContainers`
with restartPolicy Always. Arguments: dict "root" $ "native" bool.
*/}}
{{- define "pai.sidecarContainer" -}}
{{- $ := .root -}}
{{- $kubeMode := eq $.Values.sidecar.configSource "kubernetes" -}}
- name: sidecar
  image: {{ include "pai.image" (dict "image" $.Values.sidecar.image "default" $.Chart.AppVersion) }}
  imagePullPolicy: {{ $.Values.sidecar.image.pullPolicy }}
  {{- if .native }}
  restartPolicy: Always
  {{- end }}
  args:
    {{- if $kubeMode }}
    - --config-source
    - kubernetes
    - --configmap
    - {{ include "pai.configMapName" $ }}
    {{- else }}
    - --config
    - /etc/pai-cors-sidecar/config.yaml
    {{- end }}
  {{- range $.Values.sidecar.extraEnv }}
  {{- if and $.Values.sidecar.nodeOptions (eq (toString .name) "NODE_OPTIONS") }}
  {{- fail "sidecar.extraEnv sets NODE_OPTIONS, and so does sidecar.nodeOptions: put every option in sidecar.nodeOptions (one would silently replace the other)" }}
  {{- end }}
  {{- end }}
  {{- if or $kubeMode $.Values.sidecar.nodeOptions $.Values.sidecar.extraEnv }}
  env:
    {{- with $.Values.sidecar.nodeOptions }}
    # V8's heap sizing under the container's memory limit (values.yaml, sidecar.nodeOptions).
    - name: NODE_OPTIONS
      value: {{ . | quote }}
    {{- end }}
    {{- if $kubeMode }}
    # Downward API: the namespace to watch in, and the pod that Events are recorded on.
    - name: POD_NAMESPACE
      valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: POD_UID
      valueFrom: {fieldRef: {fieldPath: metadata.uid}}
    {{- end }}
    {{- with $.Values.sidecar.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  ports:
    - name: {{ include "pai.scheme" $ }}
      containerPort: {{ $.Values.server.port }}
      protocol: TCP
    - name: admin
      containerPort: {{ $.Values.admin.port }}
      protocol: TCP
  {{- if .native }}
  # A native sidecar's startup probe gates the start of the Private AI container: /livez (the
  # process serves), never /readyz, which waits for the container that has not started yet.
  startupProbe:
    httpGet: {path: /livez, port: {{ $.Values.admin.port }}}
    periodSeconds: 1
    failureThreshold: 30
  {{- end }}
  livenessProbe:
    httpGet: {path: /livez, port: {{ $.Values.admin.port }}}
    periodSeconds: 10
    timeoutSeconds: 2
    failureThreshold: 3
  # /readyz is 503 while the Private AI container fails its health check and while draining, so the
  # pod leaves the Service endpoints before the sidecar stops listening.
  readinessProbe:
    httpGet: {path: /readyz, port: {{ $.Values.admin.port }}}
    periodSeconds: 5
    timeoutSeconds: 2
    failureThreshold: 2
  resources:
    {{- toYaml $.Values.sidecar.resources | nindent 4 }}
  securityContext:
    {{- toYaml $.Values.sidecar.securityContext | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
    {{- if $kubeMode }}
    - name: kube-api-access
      mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      readOnly: true
    {{- else }}
    - name: config
      mountPath: /etc/pai-cors-sidecar
      readOnly: true
    {{- end }}
    {{- if $.Values.auth.apiKeys }}
    # A directory, never subPath: the kubelet's atomic swap of a rotated Secret then reaches the
    # sidecar, which watches the directory (README, "Authentication").
    - name: api-keys
      mountPath: /etc/pai-cors-sidecar-api-keys
      readOnly: true
    {{- end }}
    {{- if $.Values.tls.enabled }}
    # The certificate Secret as a directory, never subPath: the kubelet swaps its ..data symlink on
    # renewal, and the sidecar serves the new pair to new connections without a restart.
    - name: tls
      mountPath: /etc/pai-cors-sidecar-tls
      readOnly: true
    {{- end }}
{{- end -}}
