{{/* Name of a component's objects: bare (hub, proxy-public, ...) like upstream, prefixed only with fullnameOverride. */}}
{{- define "jupyterhub.name" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- if $root.Values.fullnameOverride -}}
{{- printf "%s-%s" $root.Values.fullnameOverride $name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name -}}
{{- end -}}
{{- end -}}

{{- define "jupyterhub.commonLabels" -}}
app: {{ .Values.nameOverride | default .Chart.Name | quote }}
release: {{ .Release.Name | quote }}
chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
heritage: {{ .Release.Service | quote }}
app.kubernetes.io/name: {{ .Values.nameOverride | default .Chart.Name | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
{{- end -}}

{{/* Selector labels of one component; argument: (list $ "hub"). */}}
{{- define "jupyterhub.selectorLabels" -}}
{{- $root := index . 0 -}}
app: {{ $root.Values.nameOverride | default $root.Chart.Name | quote }}
release: {{ $root.Release.Name | quote }}
component: {{ index . 1 | quote }}
{{- end -}}

{{/* name:tag of an image block. */}}
{{- define "jupyterhub.image" -}}
{{- printf "%s:%s" .name .tag -}}
{{- end -}}

{{/* imagePullSecrets of a pod: chart-wide ones plus the image block's own. */}}
{{- define "jupyterhub.pullSecrets" -}}
{{- $root := index . 0 -}}
{{- $image := index . 1 -}}
{{- $all := concat ($root.Values.imagePullSecrets | default list) ($image.pullSecrets | default list) -}}
{{- if $all }}
imagePullSecrets:
{{- range $all }}
  - name: {{ if kindIs "string" . }}{{ . }}{{ else }}{{ .name }}{{ end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Egress rules of a NetworkPolicy from an egressAllowRules block plus extra egress. */}}
{{- define "jupyterhub.egress" -}}
{{- $rules := .egressAllowRules -}}
{{- $private := list "10.0.0.0/8" "172.16.0.0/12" "192.168.0.0/16" -}}
{{- if or $rules.dnsPortsPrivateIPs $rules.dnsPortsKubeSystemNamespace $rules.dnsPortsCloudMetadataServer }}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
  to:
    {{- if $rules.dnsPortsPrivateIPs }}
    {{- range $private }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
    {{- end }}
    {{- if $rules.dnsPortsCloudMetadataServer }}
    - ipBlock:
        cidr: 169.254.169.254/32
    {{- end }}
    {{- if $rules.dnsPortsKubeSystemNamespace }}
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
    {{- end }}
{{- end }}
{{- if $rules.nonPrivateIPs }}
- to:
    - ipBlock:
        cidr: 0.0.0.0/0
        except:
          {{- range $private }}
          - {{ . }}
          {{- end }}
          {{- if not $rules.cloudMetadataServer }}
          - 169.254.169.254/32
          {{- end }}
{{- end }}
{{- if $rules.privateIPs }}
- to:
    {{- range $private }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
{{- end }}
{{- if $rules.cloudMetadataServer }}
- to:
    - ipBlock:
        cidr: 169.254.169.254/32
{{- end }}
{{- with .egress }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Ingress "from" peers for interNamespaceAccessLabels: accept also matches labelled pods in other namespaces. */}}
{{- define "jupyterhub.accessPeers" -}}
{{- $np := index . 0 -}}
{{- $label := index . 1 -}}
- podSelector:
    matchLabels:
      {{ $label }}: "true"
{{- if eq $np.interNamespaceAccessLabels "accept" }}
- namespaceSelector:
    matchLabels:
      {{ $label }}: "true"
- namespaceSelector: {}
  podSelector:
    matchLabels:
      {{ $label }}: "true"
{{- end }}
{{- end -}}
