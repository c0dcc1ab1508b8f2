{{- define "kserve.labels" -}}
app.kubernetes.io/name: kserve
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.kserve.version | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end -}}

{{- define "kserve.selectorLabels" -}}
control-plane: kserve-controller-manager
controller-tools.k8s.io: "1.0"
{{- end -}}
