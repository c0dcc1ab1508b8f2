{{/* Common labels of every object this chart renders. */}}
{{- define "gpu-operator.labels" -}}
app.kubernetes.io/name: gpu-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 }}
{{- end -}}

{{/* Labels that select the operator pod. */}}
{{- define "gpu-operator.selectorLabels" -}}
app.kubernetes.io/component: gpu-operator
app: gpu-operator
{{- end -}}

{{/* repository/image:version of a component, the version defaulting to the chart's appVersion. */}}
{{- define "gpu-operator.image" -}}
{{- $c := index . 0 -}}
{{- $root := index . 1 -}}
{{- printf "%s/%s:%s" $c.repository $c.image ($c.version | default $root.Chart.AppVersion) -}}
{{- end -}}
